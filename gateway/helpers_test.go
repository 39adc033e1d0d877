package gateway_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 10 * time.Second

// start runs a gateway with two echo routes: /echo with the bare form on,
// /nobare with it off.
func start(t *testing.T, opts gateway.Options) *testgw.Gateway {
	t.Helper()
	opts.Routes = []gateway.Route{
		{Path: "/echo", Service: service.Echo{}, Bare: true},
		{Path: "/nobare", Service: service.Echo{}},
	}
	return testgw.Start(t, opts)
}

// connect opens a plain socket to the gateway, or a TLS one that trusts its
// certificate, closed when the test ends and bounded by waitLimit.
func connect(t *testing.T, gw *testgw.Gateway, useTLS bool) net.Conn {
	t.Helper()
	return gw.Connect(t, useTLS)
}

// forBoth runs f as two subtests, over plain TCP and over TLS.
func forBoth(t *testing.T, f func(t *testing.T, useTLS bool)) {
	t.Run("http", func(t *testing.T) { f(t, false) })
	t.Run("https", func(t *testing.T) { f(t, true) })
}

// readExactly reads len(want) bytes from r and checks them.
func readExactly(t *testing.T, r io.Reader, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if n, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("read %q, %v; want %q", got[:n], err, want)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// write writes s in one Write call: one segment on loopback, one TLS record.
func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
}

// isReset reports a connection the other end reset.
func isReset(err error) bool { return testgw.IsReset(err) }
