package porthole_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// A refusal is a request the gateway must answer with an error status and
// a one-line text body instead of a tunnel. The request is porthole's own
// upgrade request changed by edits, so the same case is sent twice: as raw
// bytes on a socket, and by porthole.Dial through a connection that applies
// the edits on the way (an "intermediary" that breaks the request).
type refusal struct {
	name   string
	path   string
	edits  []testgw.Edit
	capped bool   // sent to a gateway whose one tunnel is taken
	code   int    // the status
	reason string // a fragment of the one-line body
	header string // a response header that must be present, "Name: value"
}

var refusals = []refusal{
	{name: "UnknownPath", path: "/nope", code: 404, reason: "no route /nope"},
	{name: "DeadBackend", path: "/dead", code: 502, reason: "connection refused"},
	{name: "WrongMethod", path: "/echo", edits: []testgw.Edit{testgw.Method("PATCH")}, code: 405, reason: "method PATCH", header: "Allow: GET"},
	{name: "WrongMethodPlain", path: "/echo", edits: []testgw.Edit{testgw.Method("PATCH"), testgw.Without("Upgrade", "Connection")}, code: 405, reason: "method PATCH", header: "Allow: GET, POST"},
	{name: "PostUpgrade", path: "/echo", edits: []testgw.Edit{testgw.Method("POST")}, code: 405, reason: "method POST cannot upgrade"},
	{name: "PostWithoutCarrier", path: "/echo", edits: []testgw.Edit{testgw.Method("POST"), testgw.Without("Upgrade", "Connection")}, code: 400, reason: "opens a poll session"},
	{name: "NoConnectionUpgrade", path: "/echo", edits: []testgw.Edit{testgw.Without("Connection")}, code: 400, reason: "without Connection: Upgrade"},
	{name: "HTTP10Upgrade", path: "/echo", edits: []testgw.Edit{testgw.Proto("HTTP/1.0")}, code: 400, reason: "Upgrade needs HTTP/1.1"},
	{name: "UpgradeWithBody", path: "/echo", edits: []testgw.Edit{testgw.Body("abc")}, code: 400, reason: "carries no body"},
	{name: "UnknownToken", path: "/echo", edits: []testgw.Edit{testgw.Without("Upgrade"), testgw.With("Upgrade: h2c")}, code: 400, reason: `unsupported Upgrade "h2c"`},
	{name: "PlainGET", path: "/echo", edits: []testgw.Edit{testgw.Without("Upgrade", "Connection", "Porthole-Version")}, code: 426, reason: "carries a TCP stream", header: "Upgrade: porthole"},
	{name: "UpgradeStripped", path: "/echo", edits: []testgw.Edit{testgw.Without("Upgrade", "Connection")}, code: 426, reason: "Upgrade header did not arrive", header: "Upgrade: porthole"},
	{name: "OverCap", path: "/echo", capped: true, code: 503, reason: "cap of 1 open tunnels"},
	{name: "ConnectTCPCapsule", path: "/echo", edits: []testgw.Edit{testgw.Without("Upgrade"), testgw.With("Upgrade: connect-tcp"), testgw.With("Capsule-Protocol: ?1")}, code: 501, reason: "capsule protocol"},
}

func TestRefusals(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	capped := startGateway(t, gateway.Options{MaxTunnels: 1, Routes: []gateway.Route{{Path: "/echo", Service: service.Echo{}}}})
	held := mustDial(t, capped.URL+"/echo", nil, waitLimit)
	echoOnce(t, held, "holding the only place") // the tunnel is open, not just dialed
	for _, rc := range refusals {
		target := gw
		if rc.capped {
			target = capped
		}
		t.Run(rc.name+"/raw", func(t *testing.T) { rc.checkRaw(t, target) })
		t.Run(rc.name+"/Dial", func(t *testing.T) { rc.checkDial(t, target) })
	}
}

// checkRaw writes the request on a socket and reads the answer with
// http.ReadResponse.
func (rc refusal) checkRaw(t *testing.T, gw *testgw.Gateway) {
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(gw.URL, "http://"), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitLimit))
	head := "GET " + rc.path + " HTTP/1.1\r\nHost: gateway.test\r\nConnection: Upgrade\r\nUpgrade: porthole\r\nPorthole-Version: 1\r\n\r\n"
	resp, body := testgw.Ask(t, conn, testgw.ApplyEdits(head, rc.edits))
	if resp.StatusCode != rc.code {
		t.Fatalf("status = %s, want %d (body %q)", resp.Status, rc.code, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	line := string(body)
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") || !strings.Contains(line, rc.reason) {
		t.Errorf("body = %q, want one line containing %q", line, rc.reason)
	}
	if rc.header != "" {
		name, value, _ := strings.Cut(rc.header, ": ")
		if got := resp.Header.Get(name); !strings.EqualFold(got, value) {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
}

// checkDial dials through a connection that applies the edits, and checks
// Dial's error.
func (rc refusal) checkDial(t *testing.T, gw *testgw.Gateway) {
	d := &porthole.Dialer{Carrier: porthole.Raw, DialContext: editingDialer(rc.edits)}
	conn, err := porthole.Dial(dialContext(t), gw.URL+rc.path, d)
	expectRefusal(t, conn, err, rc.code, rc.reason)
}

// editingDialer dials TCP and applies edits to the first request head the
// connection carries: a misbehaving intermediary between Dial and the
// gateway.
func editingDialer(edits []testgw.Edit) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &editConn{Conn: c, edits: edits}, nil
	}
}

type editConn struct {
	net.Conn
	mu    sync.Mutex
	head  []byte
	sent  bool
	edits []testgw.Edit
}

func (c *editConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent {
		return c.Conn.Write(p)
	}
	c.head = append(c.head, p...)
	head, rest, ok := strings.Cut(string(c.head), "\r\n\r\n")
	if !ok {
		return len(p), nil
	}
	c.sent = true
	if _, err := io.WriteString(c.Conn, testgw.ApplyEdits(head+"\r\n\r\n", c.edits)+rest); err != nil {
		return 0, err
	}
	return len(p), nil
}

// expectRefusal checks that a Dial failed with a *porthole.StatusError of
// code whose one-line reason contains reason, and that the error's text
// says that reason.
func expectRefusal(t *testing.T, conn net.Conn, err error, code int, reason string) {
	t.Helper()
	if err == nil {
		conn.Close()
		t.Fatalf("Dial succeeded, want a %d refusal", code)
	}
	var se *porthole.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Dial error %T %q is not a *porthole.StatusError", err, err)
	}
	if se.Code != code || !strings.Contains(se.Reason, reason) || strings.Contains(se.Reason, "\n") {
		t.Errorf("StatusError = %d %q, want %d with one line containing %q", se.Code, se.Reason, code, reason)
	}
	if !strings.Contains(err.Error(), se.Reason) {
		t.Errorf("error %q does not say the gateway's reason %q", err, se.Reason)
	}
}
