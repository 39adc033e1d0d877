package porthole_test

import (
	"net"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/internal/testgw"
)

// listenerServer mounts a porthole.Listener as the whole handler of a real
// loopback server (TLS or not) and returns the Listener, the URL to dial
// and the Dialer that trusts the server. Both close when the test ends.
func listenerServer(t *testing.T, useTLS bool) (*porthole.Listener, string, *porthole.Dialer) {
	t.Helper()
	l := porthole.NewListener(nil)
	srv, cfg := testgw.HTTPServer(t, l, useTLS)
	t.Cleanup(func() { l.Close() }) // before the server's close
	return l, srv.URL + "/tunnel", &porthole.Dialer{TLSConfig: cfg}
}

// accepted is one Accept's result.
type accepted struct {
	conn net.Conn
	err  error
}

// acceptAsync runs one Accept in the background; its result arrives on the
// returned channel (buffered, so the goroutine never stays blocked on it).
func acceptAsync(l *porthole.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	return ch
}

// awaitAccept waits, within waitLimit, for an Accept started by
// acceptAsync.
func awaitAccept(t testing.TB, ch <-chan accepted) (net.Conn, error) {
	t.Helper()
	select {
	case a := <-ch:
		return a.conn, a.err
	case <-time.After(waitLimit):
		t.Fatal("Accept did not return")
		return nil, nil
	}
}
