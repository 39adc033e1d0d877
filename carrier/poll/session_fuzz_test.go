package poll_test

import (
	"bytes"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// The fuzzed session's stream: byte i of the client's stream is always
// canon[i], so the echo of any byte can be checked where it lands.
const (
	canonBytes = 64 << 10
	// fuzzBuffer is the session's buffer in each direction: small, so
	// that sends are taken in part and wait for room.
	fuzzBuffer = 4 << 10
	// fuzzMaxSend is the most bytes one fuzzed send carries.
	fuzzMaxSend = 6 << 10
	// fuzzMaxSteps is the most requests one input drives.
	fuzzMaxSteps = 48
	// fuzzWait bounds each request of the fuzzed session, and the final
	// drain.
	fuzzWait = 5 * time.Second
)

var canon = func() []byte {
	b := make([]byte, canonBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}()

// Step kinds: the first byte of each step, modulo stepKinds.
const (
	stepSend = iota
	stepSendAgain
	stepRecv
	stepRecvAgain
	stepWrongToken
	stepRawValue
	stepNoStep
	stepClose
	stepKinds
)

// edgeValues are offsets a step can send as they are: the edges of
// what a stream offset is, as raw header values.
var edgeValues = []string{"0", "-1", "+1", "9223372036854775807", "1e3", " 5", "-0", "007", "", "9223372036854775808", "0x10", "5 ", "1.0"}

// How offsetNear picks an offset, as seeds write it.
const (
	near     = iota // the Ack for a send, where the client stands for a receive
	behind          // that many bytes behind
	beyond          // 1 + that many bytes beyond
	anywhere        // that offset
	lastAck         // receives only: the last offset a receive acknowledged
)

// Flags of a send step.
const (
	flagEOF     = 1 // with Porthole-EOF: 1
	flagCorrupt = 2 // the bytes behind the Ack changed
)

// Seed steps, written in the layout the steps read them.
func sendSeed(mode byte, arg uint16, length, flags byte) []byte {
	b := []byte{stepSend, 0, mode}
	if mode != near {
		b = append(b, byte(arg>>8), byte(arg))
	}
	return append(b, length, flags)
}

func recvSeed(mode byte, arg uint16) []byte {
	b := []byte{stepRecv, 0, mode}
	if mode != near && mode != lastAck {
		b = append(b, byte(arg>>8), byte(arg))
	}
	return b
}

// seedScript builds a fuzz input from steps.
func seedScript(steps ...[]byte) []byte { return bytes.Join(steps, nil) }

// FuzzSession drives one poll session on a real gateway (the built-in
// echo, a 4 KiB session buffer, a 5 ms long-poll) with requests the input
// describes: sends at offsets behind, at and beyond the acknowledged one
// (some with bytes behind it changed, some with an end of stream),
// receives acknowledging offsets behind, at and beyond what arrived, raw
// offset values (edgeValues, or bytes of the input), wrong tokens, steps
// that do not exist, requests without their offset, and close. Every
// byte sent at stream offset i is canon[i]. It checks that:
//
//   - every answer has Cache-Control: no-store and Porthole-Version, and
//     none is a 5xx;
//   - a wrong token gets exactly 404, whatever the request, and leaves
//     the session as it was; so does the real one once the session is
//     closed;
//   - a send from the acknowledged offset or behind it gets 204 with an
//     Ack that never goes backwards and never exceeds what the send
//     carried; beyond it, 409 with the Ack unchanged;
//   - an offset that is not a decimal number from 0 gets 400;
//   - a receive below the last acknowledged offset, or beyond what the
//     gateway took, gets 409 with that offset; one within what has
//     arrived gets 200 from exactly that offset; every byte received at
//     offset i is canon[i], never beyond what the gateway took, and the
//     end of stream comes only where the client's end took effect;
//   - after it all, a client that ends its stream and receives from
//     where it stands gets every byte up to its end of stream, each
//     once, then the end of stream, within fuzzWait; close then ends the
//     session.
func FuzzSession(f *testing.F) {
	for _, s := range [][]byte{
		// A send and its echo (sendLength 5 is 120 bytes).
		seedScript(sendSeed(near, 0, 5, 0), recvSeed(near, 0)),
		// A retry behind the Ack with other bytes, a send beyond it.
		seedScript(sendSeed(near, 0, 64, 0), sendSeed(behind, 300, 20, flagCorrupt), sendSeed(beyond, 5, 5, 0), recvSeed(near, 0)),
		// Sends over the 4 KiB buffer, taken in part; receives beyond,
		// behind and at the last acknowledged offset.
		seedScript(sendSeed(near, 0, 200, 0), sendSeed(near, 0, 200, 0), sendSeed(near, 0, 200, 0),
			recvSeed(beyond, 9), recvSeed(near, 0), recvSeed(behind, 9), recvSeed(lastAck, 0), recvSeed(anywhere, 4000)),
		// The end of stream, then a send after it.
		seedScript(sendSeed(near, 0, 255, flagEOF), sendSeed(near, 0, 10, 0), recvSeed(near, 0), recvSeed(near, 0)),
		// Close as DELETE, then as POST; steps after it.
		seedScript(sendSeed(near, 0, 9, 0), []byte{stepClose, 0, 0}, sendSeed(near, 0, 1, 0), recvSeed(near, 0)),
		seedScript(sendSeed(near, 0, 9, 0), []byte{stepClose, 0, 1}, []byte{stepClose, 0, 0}),
		// No step: PATCH, OPTIONS, POST with Porthole-Op: dance, PUT and GET
		// without their offset.
		seedScript([]byte{stepNoStep, 0}, []byte{stepNoStep, 1}, []byte{stepNoStep, 2, 'd', 'a', 'n', 'c', 'e', 0}, []byte{stepNoStep, 3}, []byte{stepNoStep, 4}),
		// 6 KiB sends into a 4 KiB buffer nobody drains.
		bytes.Repeat(sendSeed(near, 0, 255, 0), 8),
	} {
		f.Add(s)
	}
	// Each edge value as a send's offset (flags: a POST) and a receive's.
	for i := range edgeValues {
		f.Add(seedScript(sendSeed(near, 0, 20, 0), []byte{stepRawValue, 0, byte(i), 4, 4}, []byte{stepRawValue, 1, byte(i)}))
	}
	// Each kind of wrong token, with a request of each kind.
	for v := range byte(6) {
		guess := []byte{stepWrongToken, 7, v}
		if v == 5 {
			guess = append(guess, "a guess\x00"...)
		}
		f.Add(seedScript(sendSeed(near, 0, 20, 0), append(guess, v), recvSeed(near, 0)))
	}

	gw := testgw.Start(f, gateway.Options{
		Routes:             []gateway.Route{{Path: "/echo", Service: service.Echo{}}},
		LongPoll:           5 * time.Millisecond,
		SessionBufferBytes: fuzzBuffer,
		Logger:             slog.New(slog.DiscardHandler),
	})
	hc := &http.Client{Timeout: fuzzWait, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	f.Cleanup(hc.CloseIdleConnections)
	f.Fuzz(func(t *testing.T, script []byte) {
		s := &session{t: t, hc: hc, url: gw.URL + "/echo", in: script, eofAt: -1}
		s.open()
		for step := 0; step < fuzzMaxSteps && len(s.in) > 0; step++ {
			s.step()
		}
		if !s.closed {
			s.drain()
			s.close()
		}
		s.expectGone()
	})
}

// session is the fuzz target's client: it speaks the protocol by hand
// from an input and keeps a model of what the gateway holds.
type session struct {
	t     *testing.T
	hc    *http.Client
	url   string
	in    []byte // what is left of the input
	token string
	nonce int

	ack    int64 // the gateway's Ack: in.next, the offset it expects next
	eofAt  int64 // where the client's end of stream took effect, or -1
	base   int64 // the last offset a receive acknowledged
	pos    int64 // how far the client has received
	seen   int64 // how far the gateway is known to have echoed
	gotEOF bool  // a receive brought the end of stream
	closed bool  // the client closed the session
}

// next takes one byte of the input, 0 once it is used up.
func (s *session) next() byte {
	if len(s.in) == 0 {
		return 0
	}
	b := s.in[0]
	s.in = s.in[1:]
	return b
}

// upTo takes a number from 0 to max from the input (max < 65536).
func (s *session) upTo(max int) int {
	v := int(s.next())<<8 | int(s.next())
	return v % (max + 1)
}

// offsetNear takes a stream offset from the input: at, behind it, beyond
// it (by 1 to 256), anywhere in the stream, or one of extra.
func (s *session) offsetNear(at int64, extra ...int64) int64 {
	switch mode := int(s.next()) % (4 + len(extra)); mode {
	case 0:
		return at
	case 1:
		return max(at-int64(s.upTo(canonBytes-1)), 0)
	case 2:
		return at + 1 + int64(s.upTo(255))
	case 3:
		return int64(s.upTo(canonBytes - 1))
	default:
		return extra[mode-4]
	}
}

// sendLength takes the length of a send, from 0 to fuzzMaxSend.
func (s *session) sendLength() int { return int(s.next()) * fuzzMaxSend / 255 }

// text takes bytes up to a 0 (or the input's end) as a header value,
// keeping only what a header value may hold.
func (s *session) text() string {
	var b []byte
	for len(s.in) > 0 && len(b) < 64 {
		c := s.next()
		if c == 0 {
			break
		}
		if c >= 0x20 && c != 0x7f || c == '\t' {
			b = append(b, c)
		}
	}
	return string(b)
}

// reply is an answer with its body read.
type reply struct {
	*http.Response
	body []byte
	what string // the request, for messages
}

// do sends a request with headers "Name: value" (a value may be empty)
// and checks what every answer must have.
func (s *session) do(method, token string, body []byte, headers ...string) reply {
	s.t.Helper()
	s.nonce++
	req, err := http.NewRequest(method, s.url+"?n="+strconv.Itoa(s.nonce), bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(poll.SessionHeader, token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	what := method + " " + strings.Join(headers, ", ") + " with " + strconv.Itoa(len(body)) + " bytes"
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		s.t.Fatalf("%s: reading the answer: %v", what, err)
	}
	r := reply{resp, b, what}
	if resp.StatusCode >= 500 {
		s.t.Fatalf("%s = %s %q: no 5xx in a session to the echo", what, resp.Status, b)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		s.t.Fatalf("%s = %s with Cache-Control %q, want no-store", what, resp.Status, cc)
	}
	if v := resp.Header.Get(carrier.VersionHeader); v != carrier.Version {
		s.t.Fatalf("%s = %s with %s %q, want %s", what, resp.Status, carrier.VersionHeader, v, carrier.Version)
	}
	return r
}

// expect checks the status, and for a refusal its one-line body.
func (r reply) expect(t *testing.T, code int) reply {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("%s = %s %q, want %d", r.what, r.Status, r.body, code)
	}
	if code >= 400 && r.Request.Method != http.MethodHead && (strings.Count(string(r.body), "\n") != 1 || !strings.HasSuffix(string(r.body), "\n")) {
		t.Fatalf("%s = %s with body %q, want one line", r.what, r.Status, r.body)
	}
	return r
}

// offsetOf reads a header the answer must carry as an offset.
func (r reply) offsetOf(t *testing.T, name string) int64 {
	t.Helper()
	v := r.Header.Get(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		t.Fatalf("%s = %s with %s %q, want an offset", r.what, r.Status, name, v)
	}
	return n
}

func (s *session) open() {
	a := s.do(http.MethodPost, "", nil, poll.CarrierHeader+": "+poll.Name, carrier.VersionHeader+": 1").expect(s.t, http.StatusCreated)
	s.token = a.Header.Get(poll.SessionHeader)
	if s.token == "" {
		s.t.Fatal("201 without a session token")
	}
}

// step runs the next step of the input.
func (s *session) step() {
	switch s.next() % stepKinds {
	case stepSend, stepSendAgain:
		s.sendStep()
	case stepRecv, stepRecvAgain:
		s.recvStep()
	case stepWrongToken:
		s.wrongToken()
	case stepRawValue:
		s.rawValue()
	case stepNoStep:
		s.noStep()
	case stepClose:
		s.closeStep()
	}
}

// sendStep: method, offset (offsetNear the Ack), length, flags (bit 0
// end of stream, bit 1 bytes behind the Ack changed).
func (s *session) sendStep() {
	post := s.next()&1 == 1
	off := s.offsetNear(s.ack)
	n := s.sendLength()
	flags := s.next()
	s.send(post, strconv.FormatInt(off, 10), off, n, flags&1 == 1, flags&2 == 2)
}

// send sends n bytes of the stream from off, with the raw offset value v
// (which means off), and checks the answer against the model.
func (s *session) send(post bool, v string, off int64, n int, eof, corrupt bool) {
	s.t.Helper()
	body := canonAt(off, n)
	if corrupt && off < s.ack {
		body = bytes.Clone(body)
		for i := range body[:min(int64(len(body)), s.ack-off)] {
			body[i] ^= 0x5a
		}
	}
	headers := []string{poll.OffsetHeader + ": " + v}
	if eof {
		headers = append(headers, poll.EOFHeader+": 1")
	}
	a := s.sendRequest(post, s.token, body, headers...)
	if s.closed {
		a.expect(s.t, http.StatusNotFound)
		return
	}
	if off > s.ack {
		a.expect(s.t, http.StatusConflict)
		if got := a.offsetOf(s.t, poll.AckHeader); got != s.ack {
			s.t.Fatalf("%s = 409 with Ack %d, want the unchanged %d", a.what, got, s.ack)
		}
		return
	}
	a.expect(s.t, http.StatusNoContent)
	got := a.offsetOf(s.t, poll.AckHeader)
	end := max(s.ack, off+int64(len(body)))
	switch {
	case got < s.ack:
		s.t.Fatalf("%s: Ack went back from %d to %d", a.what, s.ack, got)
	case got > end:
		s.t.Fatalf("%s: Ack %d beyond the %d bytes sent from %d", a.what, got, len(body), off)
	case got < end && s.eofAt >= 0:
		s.t.Fatalf("%s: Ack %d, want %d: after the end of stream a send is taken whole", a.what, got, end)
	}
	s.ack = got
	if eof && s.eofAt < 0 && got == end {
		s.eofAt = got
	}
}

// sendRequest sends a send step as PUT, or as POST with Porthole-Op.
func (s *session) sendRequest(post bool, token string, body []byte, headers ...string) reply {
	s.t.Helper()
	if post {
		return s.do(http.MethodPost, token, body, append(headers, poll.OpHeader+": send")...)
	}
	return s.do(http.MethodPut, token, body, headers...)
}

func canonAt(off int64, n int) []byte {
	if off >= canonBytes {
		return nil
	}
	return canon[off:min(off+int64(n), canonBytes)]
}

// recvStep: method, offset to acknowledge (offsetNear where the client
// stands, or the last acknowledged one).
func (s *session) recvStep() {
	post := s.next()&1 == 1
	k := s.offsetNear(s.pos, s.base)
	s.recv(post, strconv.FormatInt(k, 10), k)
}

// recv receives acknowledging k, sent as the raw value v, and checks the
// answer against the model.
func (s *session) recv(post bool, v string, k int64) reply {
	s.t.Helper()
	a := s.recvRequest(post, s.token, poll.AckHeader+": "+v)
	if s.closed {
		a.expect(s.t, http.StatusNotFound)
		return a
	}
	if k < s.base || k > s.ack || k > s.seen && a.StatusCode == http.StatusConflict {
		a.expect(s.t, http.StatusConflict)
		if got := a.offsetOf(s.t, poll.AckHeader); got != s.base {
			s.t.Fatalf("%s = 409 with Ack %d, want the last acknowledged offset %d", a.what, got, s.base)
		}
		return a
	}
	a.expect(s.t, http.StatusOK)
	if got := a.offsetOf(s.t, poll.OffsetHeader); got != k {
		s.t.Fatalf("%s = 200 from offset %d, want %d", a.what, got, k)
	}
	if cl := a.Header.Get("Content-Length"); cl != strconv.Itoa(len(a.body)) {
		s.t.Fatalf("%s = 200 with Content-Length %q for %d bytes", a.what, cl, len(a.body))
	}
	end := k + int64(len(a.body))
	if end > s.ack || s.eofAt >= 0 && end > s.eofAt {
		s.t.Fatalf("%s: %d bytes from %d, beyond the %d the gateway took (end of stream at %d)", a.what, len(a.body), k, s.ack, s.eofAt)
	}
	if !bytes.Equal(a.body, canonAt(k, len(a.body))) {
		s.t.Fatalf("%s: the %d bytes from %d are not the ones sent there", a.what, len(a.body), k)
	}
	if a.Header.Get(poll.EOFHeader) != "" {
		if a.Header.Get(poll.EOFHeader) != "1" || end != s.eofAt {
			s.t.Fatalf("%s: %s %q at offset %d; the client's end of stream is at %d", a.what, poll.EOFHeader, a.Header.Get(poll.EOFHeader), end, s.eofAt)
		}
		s.gotEOF = true
	}
	s.base, s.pos, s.seen = k, end, max(s.seen, end)
	return a
}

// recvRequest sends a receive step as GET, or as POST with Porthole-Op.
func (s *session) recvRequest(post bool, token string, headers ...string) reply {
	s.t.Helper()
	if post {
		return s.do(http.MethodPost, token, nil, append(headers, poll.OpHeader+": recv")...)
	}
	return s.do(http.MethodGet, token, nil, headers...)
}

// wrongToken: variant, position, then bytes for the variant; sends any
// step with a token that is not the session's.
func (s *session) wrongToken() {
	tok := []byte(s.token)
	i := int(s.next()) % len(tok)
	var bad string
	switch s.next() % 6 {
	case 0: // one character changed for another base64url one
		c := byte('A')
		if tok[i] == c {
			c = 'B'
		}
		tok[i] = c
		bad = string(tok)
	case 1:
		bad = s.token[:max(i, 1)]
	case 2:
		bad = s.token + "A"
	case 3:
		bad = strings.ToLower(s.token)
		if bad == s.token {
			bad = strings.ToUpper(s.token)
		}
	case 4:
		bad = s.token[1:] + s.token[:1]
	case 5:
		bad = s.text()
	}
	if t := strings.Trim(bad, " \t"); t == "" || t == s.token {
		return // an empty token is no session; the same one is no guess
	}
	var a reply
	switch s.next() % 5 {
	case 0:
		a = s.sendRequest(false, bad, canonAt(s.ack, 3), poll.OffsetHeader+": "+strconv.FormatInt(s.ack, 10))
	case 1:
		a = s.recvRequest(true, bad, poll.AckHeader+": "+strconv.FormatInt(s.pos, 10))
	case 2:
		a = s.do(http.MethodDelete, bad, nil)
	case 3:
		a = s.do(http.MethodPost, bad, nil, poll.CarrierHeader+": "+poll.Name)
	case 4:
		a = s.do(http.MethodPatch, bad, nil)
	}
	a.expect(s.t, http.StatusNotFound)
	if !strings.Contains(string(a.body), "no such poll session") || strings.Contains(string(a.body), s.token) {
		s.t.Fatalf("%s with a wrong token = 404 %q: want only that the session is unknown", a.what, a.body)
	}
}

// rawValue: send or receive, value index (past edgeValues: the input's
// bytes up to a 0), and for a send its length and flags.
func (s *session) rawValue() {
	isSend := s.next()&1 == 0
	i := int(s.next())
	var v string
	if i < len(edgeValues) {
		v = edgeValues[i]
	} else {
		v = s.text()
	}
	n, ok := offsetValue(v)
	if isSend {
		length := s.sendLength()
		flags := s.next()
		if ok {
			s.send(flags&4 == 4, v, n, length, flags&1 == 1, flags&2 == 2)
			return
		}
		a := s.sendRequest(flags&4 == 4, s.token, canonAt(s.ack, length), poll.OffsetHeader+": "+v)
		s.expectBadValue(a, poll.OffsetHeader, v)
		return
	}
	if ok {
		s.recv(false, v, n)
		return
	}
	s.expectBadValue(s.recvRequest(false, s.token, poll.AckHeader+": "+v), poll.AckHeader, v)
}

// offsetValue is what the gateway must make of v as an offset header's
// value, which reaches it trimmed of spaces and tabs (see WantOffset).
func offsetValue(v string) (int64, bool) { return poll.WantOffset(strings.Trim(v, " \t")) }

func (s *session) expectBadValue(a reply, name, v string) {
	s.t.Helper()
	if s.closed {
		a.expect(s.t, http.StatusNotFound)
		return
	}
	a.expect(s.t, http.StatusBadRequest)
	if !strings.Contains(string(a.body), name) {
		s.t.Fatalf("%s = 400 %q: want it to name %s", a.what, a.body, name)
	}
}

// noStep: a request in the session that is no step, or a step without
// its offset.
func (s *session) noStep() {
	var a reply
	code := http.StatusMethodNotAllowed
	switch s.next() % 5 {
	case 0:
		a = s.do(http.MethodPatch, s.token, nil)
	case 1:
		a = s.do(http.MethodOptions, s.token, nil)
	case 2:
		op := s.text()
		switch strings.Trim(op, " \t") {
		case "send", "recv", "close":
			op += "x"
		}
		a = s.do(http.MethodPost, s.token, nil, poll.OpHeader+": "+op)
	case 3:
		a = s.do(http.MethodPut, s.token, canonAt(s.ack, 1))
		code = http.StatusBadRequest
	case 4:
		a = s.do(http.MethodGet, s.token, nil)
		code = http.StatusBadRequest
	}
	if s.closed {
		code = http.StatusNotFound
	}
	a.expect(s.t, code)
	if code == http.StatusMethodNotAllowed && a.Header.Get("Allow") != "GET, PUT, DELETE, POST" {
		s.t.Fatalf("%s = 405 with Allow %q", a.what, a.Header.Get("Allow"))
	}
}

// closeStep: one byte in four closes, as DELETE or POST; else a
// receive.
func (s *session) closeStep() {
	b := s.next()
	if b%4 != 0 {
		s.recv(false, strconv.FormatInt(s.pos, 10), s.pos)
		return
	}
	code := http.StatusNoContent
	if s.closed {
		code = http.StatusNotFound
	}
	if s.next()&1 == 1 {
		s.do(http.MethodPost, s.token, nil, poll.OpHeader+": close").expect(s.t, code)
	} else {
		s.do(http.MethodDelete, s.token, nil).expect(s.t, code)
	}
	s.closed = true
}

// drain ends the client's stream where the gateway's Ack stands (unless
// it has ended) and receives from where the client stands until the end
// of stream, which must come exactly where the client's end took effect,
// after every byte before it.
func (s *session) drain() {
	s.t.Helper()
	if s.eofAt < 0 {
		a := s.do(http.MethodPut, s.token, nil, poll.OffsetHeader+": "+strconv.FormatInt(s.ack, 10), poll.EOFHeader+": 1").expect(s.t, http.StatusNoContent)
		if got := a.offsetOf(s.t, poll.AckHeader); got != s.ack {
			s.t.Fatalf("an empty send at the Ack %d moved it to %d", s.ack, got)
		}
		s.eofAt = s.ack
	}
	for deadline := time.Now().Add(fuzzWait); !s.gotEOF; {
		if time.Now().After(deadline) {
			s.t.Fatalf("no end of stream within %v: received up to %d, the end is at %d", fuzzWait, s.pos, s.eofAt)
		}
		s.recv(false, strconv.FormatInt(s.pos, 10), s.pos)
	}
	if s.pos != s.eofAt {
		s.t.Fatalf("end of stream after offset %d, want %d", s.pos, s.eofAt)
	}
}

func (s *session) close() {
	s.do(http.MethodDelete, s.token, nil).expect(s.t, http.StatusNoContent)
	s.closed = true
}

// expectGone checks that the closed session is unknown.
func (s *session) expectGone() {
	s.recvRequest(false, s.token, poll.AckHeader+": "+strconv.FormatInt(s.pos, 10)).expect(s.t, http.StatusNotFound)
}
