package poll

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// offsetSeeds are header values at the edges of what a stream offset is.
var offsetSeeds = []string{
	"0", "1", "5", "-1", "+1", "-0", "+0", "00", "007", "9223372036854775807", "9223372036854775808",
	"-9223372036854775808", "18446744073709551616", "1e3", "1E3", "1.0", "0x10", "0b1", "0o7", "1_000",
	" 5", "5 ", "\t5", "", " ", "٣", "5\x00", "NaN", "Inf",
}

// WantOffset is what parseOffset must make of v: a decimal number of
// ASCII digits only, that fits an int64 (so not "-0", which strconv
// takes). Exported for the end-to-end fuzz target of package poll_test.
func WantOffset(v string) (int64, bool) {
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// FuzzParseOffset checks parseOffset on any header value, and a second
// value of the same header behind it: it takes exactly the decimal
// numbers from 0 that fit an int64 (WantOffset), reads the first value
// only, and refuses anything else with a one-line error that names the
// header and quotes the value.
func FuzzParseOffset(f *testing.F) {
	for _, v := range offsetSeeds {
		f.Add(v, "")
		f.Add(v, "7")
	}
	f.Fuzz(func(t *testing.T, v, second string) {
		h := http.Header{}
		h.Add(OffsetHeader, v)
		h.Add(OffsetHeader, second)
		n, err := parseOffset(h, OffsetHeader)
		want, ok := WantOffset(v)
		switch {
		case ok && (err != nil || n != want):
			t.Fatalf("parseOffset(%q) = %d, %v; want %d", v, n, err, want)
		case !ok && err == nil:
			t.Fatalf("parseOffset(%q) = %d, want an error", v, n)
		case err != nil:
			msg := err.Error()
			if n != 0 || strings.ContainsAny(msg, "\r\n") || !strings.Contains(msg, OffsetHeader) {
				t.Errorf("parseOffset(%q) = %d, %q: want 0 and one line naming %s", v, n, msg, OffsetHeader)
			}
			if v != "" && !strings.Contains(msg, strconv.Quote(v)) {
				t.Errorf("error %q does not quote the value %q", msg, v)
			}
		}
		if _, err := parseOffset(http.Header{}, AckHeader); err == nil || !strings.Contains(err.Error(), "missing "+AckHeader) {
			t.Errorf("parseOffset without the header: %v, want it missing", err)
		}
	})
}

// FuzzOpOf checks opOf on any method and Porthole-Op value: PUT, GET and
// DELETE are send, receive and close whatever Porthole-Op says; a POST is
// what its Porthole-Op names (the first value, as sent); any other method
// (method names are case-sensitive) is no step at all.
func FuzzOpOf(f *testing.F) {
	for _, m := range []string{"GET", "PUT", "DELETE", "POST", "HEAD", "PATCH", "OPTIONS", "CONNECT", "get", "post", "", "PUT "} {
		for _, op := range []string{"", "send", "recv", "close", "SEND", " send", "dance"} {
			f.Add(m, op)
		}
	}
	f.Fuzz(func(t *testing.T, method, op string) {
		r := &http.Request{Method: method, Header: http.Header{}}
		if op != "" {
			r.Header.Add(OpHeader, op)
			r.Header.Add(OpHeader, opClose)
		}
		want := map[string]string{http.MethodPut: opSend, http.MethodGet: opRecv, http.MethodDelete: opClose, http.MethodPost: op}[method]
		if got := opOf(r); got != want {
			t.Fatalf("opOf(%q with %s %q) = %q, want %q", method, OpHeader, op, got, want)
		}
	})
}
