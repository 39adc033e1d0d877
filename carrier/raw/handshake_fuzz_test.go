package raw_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/raw"
	"github.com/porthole/porthole/carrier/websocket"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// maxFuzzHead bounds the inputs the handshake targets try, far below the
// gateway's 32 KiB head limit: longer inputs find nothing new, and slow
// the fuzzer down.
const maxFuzzHead = 8 << 10

// fuzzAnswerLimit bounds each wait of the end-to-end target: the gateway
// answers a head, or ends the connection, well within it.
const fuzzAnswerLimit = 5 * time.Second

// seedHeads are the request heads the tests of the raw carrier, the
// gateway, the WebSocket carrier and the CLI send: valid handshakes of
// every carrier, the bare form, and each refusal they check.
func seedHeads() []string {
	const up = "GET /echo HTTP/1.1\r\nHost: gateway.test\r\nConnection: Upgrade\r\nUpgrade: porthole\r\nPorthole-Version: 1\r\n\r\n"
	heads := []string{
		"GET /echo HTTP/1.0\r\n\r\nsent with the request line",
		"GET /echo HTTP/1.0\r\n\r\n",
		"GET /nobare HTTP/1.0\r\n\r\n",
		"GET /echo HTTP/1.0\r\nPorthole-Version: 1\r\n\r\n",
		"GET /echo HTTP/1.0\r\nContent-Length: 3\r\n\r\nabcdef",
		"GET /echo HTTP/1.0\r\nPorthole-Session: x\r\n\r\n",
		"GET /nobare HTTP/1.1\r\nHost: gateway.test\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\nearly bytes",
		"GET /nobare HTTP/1.1\r\nHost: gateway.test\r\nConnection: Upgrade\r\nUpgrade: connect-tcp\r\n\r\nearly bytes",
		"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c, PORTHOLE\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: connect-tcp\r\nCapsule-Protocol: ?1\r\n\r\n",
		"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\n",
		"GET /dead HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\n",
		"PATCH /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nPorthole-Carrier: poll\r\nContent-Length: 0\r\n\r\n",
		"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: porthole\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /echo HTTP/1.1\r\n",
		"GET /echo HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: porthole\r\nExpect: 100-continue\r\n\r\n",
		"GET /echo HTTP/1.0\r\nExpect: something\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: porthole\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: porthole\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET http://gateway.test/echo HTTP/1.0\r\n\r\nabsolute form",
		"GET /echo HTTP/2.0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"\r\n\r\n",
		testgw.WSRequest("gateway.test", "/echo"),
		testgw.WSRequest("gateway.test", "/echo") + "\x82\x85abcd" + "\x09\x07\x0f\x08\x0e",
	}
	for _, e := range [][]testgw.Edit{
		{testgw.Method("PATCH")},
		{testgw.Method("PATCH"), testgw.Without("Upgrade", "Connection")},
		{testgw.Method("POST")},
		{testgw.Method("POST"), testgw.Without("Upgrade", "Connection")},
		{testgw.Without("Connection")},
		{testgw.Proto("HTTP/1.0")},
		{testgw.Body("abc")},
		{testgw.Without("Upgrade"), testgw.With("Upgrade: h2c")},
		{testgw.Without("Upgrade", "Connection", "Porthole-Version")},
		{testgw.Without("Upgrade", "Connection")},
		{testgw.Without("Upgrade", "Connection"), testgw.Proto("HTTP/1.0")},
		{testgw.Without("Upgrade"), testgw.With("Upgrade: connect-tcp"), testgw.With("Capsule-Protocol: ?1")},
	} {
		heads = append(heads, testgw.ApplyEdits(up, e))
	}
	return append(heads, up, up+"payload in the same write")
}

// FuzzServerHandshake parses the input as a request head, as the
// gateway's HTTP server would, and checks what the raw carrier's server
// side decides about it:
//
//   - Wants, IsBare and Check never panic, give the same answer twice and
//     leave the request as they found it;
//   - Wants on a route with the bare form is Wants without it, or IsBare;
//     a request with an Upgrade header is never bare, nor one that carries
//     Porthole-Version (a porthole client whose Upgrade was stripped);
//   - IsBare means GET over HTTP/1.0, and Check lets a bare request pass;
//   - Check returns nil or a *carrier.StatusError with a 4xx or 5xx code
//     and a one-line reason, which a client reads back unchanged from the
//     answer StatusError.Write sends; a 405 says Allow: GET;
//   - a wanted upgrade that Check passes is a GET over HTTP/1.1 or newer
//     with Connection: Upgrade and no body.
func FuzzServerHandshake(f *testing.F) {
	for _, h := range seedHeads() {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		if len(head) > maxFuzzHead {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			return // the gateway's server refuses it before any carrier
		}
		before := r.Header.Clone()
		bare := &raw.Server{Bare: true}
		plain := &raw.Server{}

		isBare := raw.IsBare(r)
		wantsBare, wantsPlain := bare.Wants(r), plain.Wants(r)
		if raw.IsBare(r) != isBare || bare.Wants(r) != wantsBare || plain.Wants(r) != wantsPlain {
			t.Fatal("IsBare or Wants answered differently the second time")
		}
		if wantsBare != (wantsPlain || isBare) {
			t.Errorf("Wants with Bare = %v, without = %v, IsBare = %v: the bare form must add exactly the bare requests", wantsBare, wantsPlain, isBare)
		}
		if isBare {
			if r.Method != http.MethodGet || r.Proto != "HTTP/1.0" {
				t.Errorf("IsBare for %s %s, want only GET over HTTP/1.0", r.Method, r.Proto)
			}
			if r.Header.Get("Upgrade") != "" || r.Header.Get(carrier.VersionHeader) != "" {
				t.Errorf("IsBare for a request with Upgrade %q and %s %q", r.Header.Get("Upgrade"), carrier.VersionHeader, r.Header.Get(carrier.VersionHeader))
			}
			if wantsPlain {
				t.Error("a route without the bare form wants a bare request")
			}
		}

		for _, s := range []*raw.Server{bare, plain} {
			err := s.Check(r)
			if again := s.Check(r); !sameError(err, again) {
				t.Fatalf("Check answered %v, then %v", err, again)
			}
			if err == nil {
				if s.Wants(r) && r.Header.Get("Upgrade") != "" {
					checkPassedUpgrade(t, r)
				}
				continue
			}
			if isBare {
				t.Errorf("Check refuses a bare request: %v", err)
			}
			checkRefusal(t, err)
		}
		if !reflect.DeepEqual(before, r.Header) {
			t.Errorf("the carrier changed the request's header: %q, was %q", r.Header, before)
		}
	})
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// checkPassedUpgrade checks an upgrade request Check let through.
func checkPassedUpgrade(t *testing.T, r *http.Request) {
	t.Helper()
	if r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) {
		t.Errorf("Check passed an upgrade by %s over %s", r.Method, r.Proto)
	}
	if !carrier.HeaderHasToken(r.Header, "Connection", "upgrade") {
		t.Errorf("Check passed an upgrade with Connection %q", r.Header.Values("Connection"))
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		t.Errorf("Check passed an upgrade with a body (Content-Length %d, Transfer-Encoding %q)", r.ContentLength, r.TransferEncoding)
	}
}

// checkRefusal checks an error of Check, and the answer it makes.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var se *carrier.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Check returned %T %v, want a *carrier.StatusError", err, err)
	}
	if se.Code < 400 || se.Code > 599 || http.StatusText(se.Code) == "" {
		t.Errorf("Check refused with status %d, want a known 4xx or 5xx", se.Code)
	}
	if se.Reason == "" || strings.ContainsAny(se.Reason, "\r\n") || strings.TrimSpace(se.Reason) != se.Reason {
		t.Errorf("Check's reason %q is not one trimmed line", se.Reason)
	}
	if se.Code == http.StatusMethodNotAllowed && se.Header.Get("Allow") != http.MethodGet {
		t.Errorf("405 with Allow %q, want GET", se.Header.Get("Allow"))
	}
	rec := httptest.NewRecorder()
	se.Write(rec)
	back := carrier.ReadStatusError(rec.Result())
	if back.Code != se.Code || back.Reason != se.Reason || back.Intermediary {
		t.Errorf("the answer reads back as %d %q (intermediary %v), want %d %q from the gateway", back.Code, back.Reason, back.Intermediary, se.Code, se.Reason)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("refusal with Cache-Control %q, want no-store", cc)
	}
}

// ownErrors are the answers net/http's server gives by itself, before
// the gateway sees a request: a malformed head (400), a head over the
// limit (431), an Expect it does not know (417), an unknown transfer
// coding (501), a protocol version it does not speak (505).
var ownErrors = map[int]bool{400: true, 417: true, 431: true, 501: true, 505: true}

// FuzzGatewayHandshake writes the input as a request head on a fresh
// connection to a real gateway on loopback (routes /echo with the bare
// form, /nobare without it, /dead whose backend refuses), half-closes,
// and reads everything the gateway sends until it ends the connection,
// which it must do within fuzzAnswerLimit. Then:
//
//   - an input the HTTP parser rejects gets nothing (a head cut short) or
//     one of net/http's own error answers;
//   - a bare request to /echo gets no answer at all: the bytes after its
//     head come back, and only them (or net/http refused it first);
//   - any other request gets an answer with a valid status line: never
//     500; a 5xx only 501 (connect-tcp's capsules, or net/http's), 502 (the
//     dead backend) or 505 (net/http's); an error answer on a path other
//     than the page's (/) is the gateway's refusal, with Porthole-Version,
//     Cache-Control: no-store and a one-line body, or net/http's own;
//   - a 101 names an upgrade the request asked for; for the raw carrier,
//     the request is one Check passes, the Porthole-Peer-Port is the
//     client's port, and the bytes after the request head come back right
//     after the 101, and only them;
//
// and the gateway still echoes a normal bare request afterwards.
func FuzzGatewayHandshake(f *testing.F) {
	for _, h := range seedHeads() {
		f.Add([]byte(h))
	}
	gw := testgw.Start(f, gateway.Options{
		Routes: []gateway.Route{
			{Path: "/echo", Service: service.Echo{}, Bare: true},
			{Path: "/nobare", Service: service.Echo{}},
			{Path: "/dead", Service: &service.TCP{Addr: testgw.DeadAddr(f)}},
		},
		// Poll sessions the fuzzer opens end soon after, so that they
		// do not pile up over a long run, nor hold the shutdown.
		SessionIdleTimeout: 200 * time.Millisecond,
		ReadHeaderTimeout:  fuzzAnswerLimit / 2,
		PingInterval:       -1,
		Logger:             slog.New(slog.DiscardHandler),
	})
	f.Fuzz(func(t *testing.T, head []byte) {
		if len(head) > maxFuzzHead {
			return
		}
		if reply, local, ok := exchange(t, gw, head); ok {
			checkReply(t, head, reply, local)
		}
		stillEchoes(t, gw)
	})
}

// exchange writes head on a new connection to gw, half-closes it, and
// returns all the gateway sent until it ended the connection, and the
// connection's local port. It returns false when the connection was
// reset: net/http closes some connections with bytes of the client
// unread (after a head it refuses, say), and the reset that makes can
// destroy the answer before it is read.
func exchange(t *testing.T, gw *testgw.Gateway, head []byte) ([]byte, string, bool) {
	t.Helper()
	conn := gw.Connect(t, false)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(fuzzAnswerLimit))
	_, werr := conn.Write(head)
	if werr == nil {
		werr = conn.(*net.TCPConn).CloseWrite()
	}
	reply, err := io.ReadAll(conn)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the gateway neither answered nor ended the connection within %v (read %q so far): %v", fuzzAnswerLimit, reply, err)
	}
	if werr != nil && !testgw.IsReset(werr) {
		t.Fatalf("writing the head: %v", werr)
	}
	if err != nil && !testgw.IsReset(err) {
		t.Fatalf("reading the answer: %v (read %q)", err, reply)
	}
	return reply, carrier.PeerPort(conn.LocalAddr().String()), err == nil
}

// checkReply checks the gateway's reply to head; local is the client's port.
func checkReply(t *testing.T, head, reply []byte, local string) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(head))
	r, perr := http.ReadRequest(br)
	if perr != nil {
		if len(reply) > 0 {
			checkOwnError(t, reply)
		}
		return
	}
	rest := head[len(head)-br.Buffered():]
	if r.URL.Path == "/echo" && raw.IsBare(r) && r.Header.Get("Porthole-Session") == "" {
		if !bytes.Equal(reply, rest) {
			checkOwnError(t, reply)
		}
		return
	}
	if len(reply) == 0 {
		if len(rest) > 0 && (&websocket.Server{}).Wants(r) {
			// gorilla/websocket hangs up without an answer on a client
			// that sends frames before the 101 (RFC 6455 section 4.1
			// forbids it); see the report of this target.
			return
		}
		t.Fatalf("no answer to a complete request %s %s %s", r.Method, r.URL, r.Proto)
	}
	rbr := bufio.NewReader(bytes.NewReader(reply))
	resp, err := http.ReadResponse(rbr, r)
	if err != nil {
		t.Fatalf("the answer does not start with a valid HTTP response: %v (reply %.200q)", err, reply)
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	fromGateway := resp.Header.Get(carrier.VersionHeader) != ""
	switch {
	case code < 100 || code > 599 || http.StatusText(code) == "":
		t.Fatalf("status %q", resp.Status)
	case code == http.StatusInternalServerError:
		t.Fatalf("500 to %s %s: %.200q", r.Method, r.URL, reply)
	case code >= 500 && !ownErrors[code] && code != http.StatusBadGateway:
		t.Fatalf("undocumented %s to %s %s: %.200q", resp.Status, r.Method, r.URL, reply)
	case code >= 400 && !fromGateway && !ownErrors[code] && r.URL.Path != "/":
		t.Fatalf("%s without %s, yet not one of net/http's own answers: %.200q", resp.Status, carrier.VersionHeader, reply)
	case code == http.StatusSwitchingProtocols:
		checkUpgrade(t, r, resp, rbr, rest, local)
		return
	}
	if code >= 400 && fromGateway && r.URL.Path != "/" {
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("refusal %s with Cache-Control %q, want no-store", resp.Status, cc)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the body of %s: %v", resp.Status, err)
		}
		if r.Method != http.MethodHead && (strings.Count(string(body), "\n") != 1 || !strings.HasSuffix(string(body), "\n") || len(body) < 2) {
			t.Errorf("refusal %s with body %q, want one line", resp.Status, body)
		}
	}
}

// checkOwnError checks that reply is one of net/http's own error answers,
// given before the gateway saw the request.
func checkOwnError(t *testing.T, reply []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(reply)), nil)
	if err != nil || !ownErrors[resp.StatusCode] || resp.Header.Get(carrier.VersionHeader) != "" {
		t.Fatalf("got %.200q, want nothing or one of net/http's own error answers", reply)
	}
	resp.Body.Close()
}

// checkUpgrade checks a 101 to r; after the 101's head come the bytes
// left in br, and rest is what the client sent after its head.
func checkUpgrade(t *testing.T, r *http.Request, resp *http.Response, br *bufio.Reader, rest []byte, local string) {
	t.Helper()
	up := resp.Header.Get("Upgrade")
	if !carrier.HeaderHasToken(r.Header, "Upgrade", up) {
		t.Fatalf("101 with Upgrade %q to a request asking for %q", up, r.Header.Values("Upgrade"))
	}
	if !strings.EqualFold(up, raw.Token) && !strings.EqualFold(up, raw.ConnectTCPToken) {
		return // the WebSocket carrier's: frames follow
	}
	if s := (&raw.Server{}); !s.Wants(r) || s.Check(r) != nil {
		t.Fatalf("a raw 101 to a request the carrier refuses (Check: %v)", s.Check(r))
	}
	if port := resp.Header.Get(carrier.PeerPortHeader); port != local {
		t.Errorf("%s = %q, want the client's port %s", carrier.PeerPortHeader, port, local)
	}
	echoed, _ := io.ReadAll(br)
	if !bytes.Equal(echoed, rest) {
		t.Fatalf("after the 101 the echo sent %.200q, want the %d bytes after the head: %.200q", echoed, len(rest), rest)
	}
}

// stillEchoes checks that gw still answers: a bare request to the echo
// gets its payload back.
func stillEchoes(t *testing.T, gw *testgw.Gateway) {
	t.Helper()
	const payload = "still serving"
	conn := gw.Connect(t, false)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(fuzzAnswerLimit))
	if _, err := io.WriteString(conn, "GET /echo HTTP/1.0\r\n\r\n"+payload); err != nil {
		t.Fatalf("the gateway no longer takes requests: %v", err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != payload {
		t.Fatalf("the gateway no longer echoes: read %q, %v", got, err)
	}
}
