package carrier

import (
	"net/http"
	"testing"
)

// TestReason: the one line a refusal is reported by, from the gateway's
// body, an intermediary's HTML title, or the status line.
func TestReason(t *testing.T) {
	for _, c := range []struct {
		name, contentType, squid, body, want string
	}{
		{"gateway's line", "text/plain", "", "no route /nope\n", "no route /nope"},
		{"HTML title", "text/html", "", "<html><TITLE>Access\n  denied</TITLE></html>", "Access denied"},
		{"tinyproxy's status in the title", "text/html", "", "<title>403 Access violation</title>", "Access violation"},
		{"squid's code", "text/html", "ERR_ACCESS_DENIED 0", "<title>ERROR: The requested URL could not be retrieved</title>", "ERROR: The requested URL could not be retrieved [ERR_ACCESS_DENIED]"},
		{"invalid UTF-8 before the title's end", "text/html", "", "<title>c\x9b\x9b\x9b denied</title>", `c\x9b\x9b\x9b denied`},
		{"the fuzzer's page", "text/html", "", "<title>c\x9b\x9b\x9b\x9b\x9b\x9bess denied\nby policy</title", `c\x9b\x9b\x9b\x9b\x9b\x9bess denied by policy`},
		{"no body", "", "", "", "Forbidden"},
		{"a control character", "text/plain", "", "bad\x1b[31m", `bad\x1b[31m`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: 403, Status: "403 Forbidden", Header: http.Header{}}
			if c.contentType != "" {
				resp.Header.Set("Content-Type", c.contentType)
			}
			if c.squid != "" {
				resp.Header.Set("X-Squid-Error", c.squid)
			}
			if got := Reason(resp, c.body); got != c.want {
				t.Errorf("Reason = %q, want %q", got, c.want)
			}
		})
	}
}
