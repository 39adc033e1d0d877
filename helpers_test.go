package porthole_test

import (
	"context"
	"io"
	"net"
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
