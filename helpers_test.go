package porthole_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// waitLimit bounds every wait in these tests: a hang fails instead of
// blocking the run.
const waitLimit = 10 * time.Second

// startGateway runs a gateway on loopback. With no routes in opts it gets
// the routes most tests use:
//
//	/echo  the built-in echo, bare form on
//	/tcp   tcp:// to a testgw.EchoServer
//	/dead  tcp:// to a port where nothing listens
func startGateway(t testing.TB, opts gateway.Options) *testgw.Gateway {
	t.Helper()
	if opts.Routes == nil {
		opts.Routes = []gateway.Route{
			{Path: "/echo", Service: service.Echo{}, Bare: true},
			{Path: "/tcp", Service: &service.TCP{Addr: testgw.EchoServer(t)}},
			{Path: "/dead", Service: &service.TCP{Addr: testgw.DeadAddr(t)}},
		}
	}
	return testgw.Start(t, opts)
}

// dialContext is a context for one Dial, bounded by waitLimit.
func dialContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// mustDial opens a tunnel, closed when the test ends, whose reads and
// writes fail after limit.
func mustDial(t testing.TB, url string, d *porthole.Dialer, limit time.Duration) net.Conn {
	t.Helper()
	conn, err := porthole.Dial(dialContext(t), url, d)
	if err != nil {
		t.Fatalf("Dial(%s): %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(limit))
	return conn
}

// echoOnce writes msg and checks that conn gives it back.
func echoOnce(t testing.TB, conn net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("reading the echo of %q: %v (got %q)", msg, err, got)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// closeWriter is what a tunnel implements to half-close.
type closeWriter interface{ CloseWrite() error }

// base is one way Dial reaches a gateway: a URL prefix and a Dialer.
type base struct {
	name, url string
	d         *porthole.Dialer
}

// bases are the ways Dial reaches gw over every carrier: raw over http
// and https, WebSocket over ws://, wss:// and http:// with the carrier
// named, poll over http and https. Behaviours every carrier must have are
// tested over all of them.
func bases(gw *testgw.Gateway) []base {
	ws := "ws" + strings.TrimPrefix(gw.URL, "http")
	wss := "wss" + strings.TrimPrefix(gw.TLSURL, "https")
	return []base{
		{"raw/http", gw.URL, &porthole.Dialer{Carrier: porthole.Raw}},
		{"raw/https", gw.TLSURL, &porthole.Dialer{Carrier: porthole.Raw, Fingerprint: gw.Pin}},
		{"websocket/ws", ws, nil},
		{"websocket/wss", wss, &porthole.Dialer{Fingerprint: gw.Pin}},
		{"websocket/http", gw.URL, &porthole.Dialer{Carrier: porthole.WebSocket}},
		{"poll/http", gw.URL, &porthole.Dialer{Carrier: porthole.Poll}},
		{"poll/https", gw.TLSURL, &porthole.Dialer{Carrier: porthole.Poll, Fingerprint: gw.Pin}},
	}
}
