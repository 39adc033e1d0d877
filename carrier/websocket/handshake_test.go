package websocket_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// waitLimit bounds every wait in these tests.
const waitLimit = testgw.WaitLimit

// appOrigin is the one browser origin the /app route allows.
const appOrigin = "https://app.example"

// start runs a gateway with opts and, unless opts has routes, these:
//
//	/echo  the built-in echo
//	/app   the built-in echo, WebSocket tunnels only from appOrigin
func start(t *testing.T, opts gateway.Options) *testgw.Gateway {
	t.Helper()
	if opts.Routes == nil {
		opts.Routes = []gateway.Route{
			{Path: "/echo", Service: service.Echo{}},
			{Path: "/app", Service: service.Echo{}, Origins: []string{appOrigin}},
		}
	}
	return testgw.Start(t, opts)
}

// forBoth runs f as two subtests, over plain TCP and over TLS.
func forBoth(t *testing.T, f func(t *testing.T, useTLS bool)) {
	t.Run("http", func(t *testing.T) { f(t, false) })
	t.Run("https", func(t *testing.T) { f(t, true) })
}

// scheme is the origin scheme a page served by the listener would have.
func scheme(useTLS bool) string {
	if useTLS {
		return "https://"
	}
	return "http://"
}

// appendRaw adds bytes after the head, as a body the headers do not
// announce.
func appendRaw(s string) testgw.Edit { return func(head string) string { return head + s } }

// TestHandshakeRefused sends handshakes that break RFC 6455 section 4.2.1
// or the origin policy, each as raw bytes: each gets its status and a
// one-line reason, and no tunnel.
func TestHandshakeRefused(t *testing.T) {
	gw := start(t, gateway.Options{})
	shortKey := base64.StdEncoding.EncodeToString(make([]byte, 15))
	for _, rc := range []struct {
		name   string
		path   string // default /echo
		edits  func(host string, useTLS bool) []testgw.Edit
		code   int
		reason string // a fragment of the one-line body
		header string // a response header that must be present, "Name: value"
	}{
		{name: "NotGET", edits: edits(testgw.Method("POST")), code: 405, reason: "a WebSocket handshake is a GET, not POST", header: "Allow: GET"},
		{name: "HTTP10", edits: edits(testgw.Proto("HTTP/1.0")), code: 400, reason: "needs HTTP/1.1 or newer, got HTTP/1.0"},
		{name: "NoConnectionUpgrade", edits: edits(testgw.Replace("Connection: keep-alive")), code: 400, reason: "without Connection: Upgrade"},
		{name: "NoConnection", edits: edits(testgw.Without("Connection")), code: 400, reason: "without Connection: Upgrade"},
		{name: "Version8", edits: edits(testgw.Replace("Sec-WebSocket-Version: 8")), code: 426, reason: `Sec-WebSocket-Version "8" is not supported`, header: "Sec-WebSocket-Version: 13"},
		{name: "NoVersion", edits: edits(testgw.Without("Sec-WebSocket-Version")), code: 426, reason: `Sec-WebSocket-Version "" is not supported`, header: "Sec-WebSocket-Version: 13"},
		{name: "KeyNotBase64", edits: edits(testgw.Replace("Sec-WebSocket-Key: not*base64*at*all!!==")), code: 400, reason: "Sec-WebSocket-Key must be 16 bytes in base64"},
		{name: "KeyShort", edits: edits(testgw.Replace("Sec-WebSocket-Key: " + shortKey)), code: 400, reason: "Sec-WebSocket-Key must be 16 bytes in base64"},
		{name: "KeyMissing", edits: edits(testgw.Without("Sec-WebSocket-Key")), code: 400, reason: "Sec-WebSocket-Key must be 16 bytes in base64"},
		{name: "Body", edits: edits(testgw.Body("abc")), code: 400, reason: "carries no body"},
		{name: "ChunkedBody", edits: edits(testgw.With("Transfer-Encoding: chunked"), appendRaw("3\r\nabc\r\n0\r\n\r\n")), code: 400, reason: "carries no body"},
		{name: "OtherSubprotocols", edits: edits(testgw.With("Sec-WebSocket-Protocol: chat, superchat")), code: 400, reason: `subprotocols ["chat" "superchat"] are not supported; ask for "binary" or none`},
		{name: "ForeignOrigin", edits: edits(testgw.With("Origin: https://evil.example")), code: 403, reason: "origin not allowed: https://evil.example"},
		{name: "NullOrigin", edits: edits(testgw.With("Origin: null")), code: 403, reason: "origin not allowed: null"},
		{name: "OriginOtherPort", edits: func(host string, useTLS bool) []testgw.Edit {
			return []testgw.Edit{testgw.With("Origin: " + scheme(useTLS) + strings.Split(host, ":")[0] + ":1")}
		}, code: 403, reason: "origin not allowed"},
		{name: "OwnOriginOnListedRoute", path: "/app", edits: func(host string, useTLS bool) []testgw.Edit {
			return []testgw.Edit{testgw.With("Origin: " + scheme(useTLS) + host)}
		}, code: 403, reason: "origin not allowed"},
	} {
		t.Run(rc.name, func(t *testing.T) {
			forBoth(t, func(t *testing.T, useTLS bool) {
				path := rc.path
				if path == "" {
					path = "/echo"
				}
				host := gw.Addr(useTLS)
				conn := gw.Connect(t, useTLS)
				head := testgw.ApplyEdits(testgw.WSRequest(host, path), rc.edits(host, useTLS))
				resp, body := testgw.Ask(t, conn, head)
				if resp.StatusCode != rc.code {
					t.Fatalf("status = %s, want %d (body %q)", resp.Status, rc.code, body)
				}
				line := string(body)
				if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") || !strings.Contains(line, rc.reason) {
					t.Errorf("body = %q, want one line containing %q", line, rc.reason)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type = %q, want text/plain", ct)
				}
				if rc.header != "" {
					name, value, _ := strings.Cut(rc.header, ": ")
					if got := resp.Header.Get(name); got != value {
						t.Errorf("%s = %q, want %q", name, got, value)
					}
				}
				if n := gw.OpenTunnels(); n != 0 {
					t.Errorf("%d tunnels open after a refusal", n)
				}
			})
		})
	}
}

// edits makes a case's edits that do not depend on the host.
func edits(e ...testgw.Edit) func(string, bool) []testgw.Edit {
	return func(string, bool) []testgw.Edit { return e }
}

// TestHandshakeAccepted sends handshakes the gateway must take: the 101
// has the right Sec-WebSocket-Accept (OpenWS checks it), the subprotocol
// only when asked, no extension, and the tunnel then echoes a message.
func TestHandshakeAccepted(t *testing.T) {
	if got := testgw.AcceptKey(testgw.WSKey); got != testgw.WSAccept {
		t.Fatalf("AcceptKey of RFC 6455's example key = %q, want %q", got, testgw.WSAccept)
	}
	gw := start(t, gateway.Options{})
	for _, ac := range []struct {
		name     string
		path     string // default /echo
		edits    func(host string, useTLS bool) []testgw.Edit
		protocol string // the Sec-WebSocket-Protocol the answer must have, or none
	}{
		{name: "Plain", edits: edits()},
		{name: "OtherKey", edits: edits(testgw.Replace("Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw=="))},
		{name: "Binary", edits: edits(testgw.With("Sec-WebSocket-Protocol: binary")), protocol: "binary"},
		{name: "BinaryAmongOthers", edits: edits(testgw.With("Sec-WebSocket-Protocol: chat, binary")), protocol: "binary"},
		{name: "DeflateDeclined", edits: edits(testgw.With("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"))},
		{name: "ConnectionList", edits: edits(testgw.Replace("Connection: keep-alive, Upgrade"))},
		{name: "ConnectionListNoSpace", edits: edits(testgw.Replace("Connection: keep-alive,upgrade"))},
		{name: "UpgradeCase", edits: edits(testgw.Replace("Upgrade: WebSocket"))},
		{name: "LowercaseNames", edits: edits(testgw.Without("Connection", "Upgrade"), testgw.With("connection: UPGRADE"), testgw.With("upgrade: websocket"))},
		{name: "NoOriginNotABrowser", edits: edits(testgw.With("User-Agent: not-a-browser"))},
		{name: "OwnOrigin", edits: func(host string, useTLS bool) []testgw.Edit {
			return []testgw.Edit{testgw.With("Origin: " + scheme(useTLS) + host)}
		}},
		{name: "ListedOrigin", path: "/app", edits: edits(testgw.With("Origin: " + appOrigin))},
	} {
		t.Run(ac.name, func(t *testing.T) {
			forBoth(t, func(t *testing.T, useTLS bool) {
				path := ac.path
				if path == "" {
					path = "/echo"
				}
				ws := testgw.OpenWS(t, gw, useTLS, path, ac.edits(gw.Addr(useTLS), useTLS)...)
				h := ws.Resp.Header
				if !strings.EqualFold(h.Get("Upgrade"), "websocket") || !strings.EqualFold(h.Get("Connection"), "Upgrade") {
					t.Errorf("101 has Upgrade %q and Connection %q, want websocket and Upgrade", h.Get("Upgrade"), h.Get("Connection"))
				}
				if got := h.Values("Sec-WebSocket-Protocol"); (ac.protocol == "" && len(got) != 0) || (ac.protocol != "" && (len(got) != 1 || got[0] != ac.protocol)) {
					t.Errorf("Sec-WebSocket-Protocol = %q, want %q", got, ac.protocol)
				}
				if ext, ok := h["Sec-Websocket-Extensions"]; ok {
					t.Errorf("the 101 accepts extensions %q; it must decline them", ext)
				}
				msg := []byte("through " + ac.name)
				ws.Send(t, testgw.ClientFrame(testgw.OpBinary, msg), testgw.ClientFrame(testgw.OpClose, testgw.ClosePayload(1000, "")))
				c := ws.ExpectClose(t, 1000)
				if !bytes.Equal(c.Data, msg) {
					t.Errorf("echo = %q, want %q", c.Data, msg)
				}
			})
		})
	}
}

// TestDeflateNotInEffect: permessage-deflate was asked for and declined,
// so a frame with RSV1 set (a compressed one) is a protocol error.
func TestDeflateNotInEffect(t *testing.T) {
	gw := start(t, gateway.Options{})
	ws := testgw.OpenWS(t, gw, false, "/echo", testgw.With("Sec-WebSocket-Extensions: permessage-deflate"))
	f := testgw.ClientFrame(testgw.OpBinary, []byte{0x4a, 0x4c, 0x04, 0x00})
	f.RSV = 4
	ws.Send(t, f)
	ws.ExpectClose(t, 1002)
}

// TestHandshakeWithoutHost: an HTTP/1.1 request without Host is refused
// before any carrier sees it (net/http's own check).
func TestHandshakeWithoutHost(t *testing.T) {
	gw := start(t, gateway.Options{})
	conn := gw.Connect(t, false)
	resp, _ := testgw.Ask(t, conn, testgw.ApplyEdits(testgw.WSRequest("x", "/echo"), []testgw.Edit{testgw.Without("Host")}))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status = %s, want 400", resp.Status)
	}
}
