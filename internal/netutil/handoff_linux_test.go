package netutil_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/porthole/porthole/internal/netutil"
)

// readString reads once from c and fails the test unless it returns want.
func readString(t *testing.T, c net.Conn, want string) {
	t.Helper()
	got := make([]byte, 64)
	n, err := c.Read(got)
	if err != nil || string(got[:n]) != want {
		t.Fatalf("Read = %q, %v; want %q", got[:n], err, want)
	}
}

// TestHandOff: a Read that finds bytes waiting returns them without
// handing off; one that would wait hands off first, and one call is
// enough for the peer's answer to reach it; a hand-off's error is the
// Read's, without waiting; the peer's end is reported.
func TestHandOff(t *testing.T) {
	// ends returns the writing end of a connection and what NewHandOff
	// made of its reading end; arrived waits until the bytes written so
	// far have reached the reading end's socket.
	for _, tc := range []struct {
		name string
		ends func(t *testing.T) (peer, reads net.Conn, h *netutil.HandOff, arrived func())
	}{
		{"TCP", func(t *testing.T) (net.Conn, net.Conn, *netutil.HandOff, func()) {
			a, b := pair(t)
			reads, h := netutil.NewHandOff(b)
			return a, reads, h, func() { queued(t, b) }
		}},
		{"TLS", func(t *testing.T) (net.Conn, net.Conn, *netutil.HandOff, func()) {
			client, server := tlsEnds(t)
			reads, h := netutil.NewHandOff(server)
			return client, reads, h, func() { queued(t, server.NetConn().(*net.TCPConn)) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, reads, h, arrived := tc.ends(t)
			calls := 0
			h.Func = func() error { calls++; return nil }

			peer.Write([]byte("waiting"))
			arrived()
			readString(t, reads, "waiting")
			if calls != 0 {
				t.Fatalf("handed off %d times for bytes that had arrived", calls)
			}

			// The peer answers the hand-off: a Read that waited first
			// would wait for good (until the test's deadline).
			h.Func = func() error { calls++; _, err := peer.Write([]byte("answer")); return err }
			readString(t, reads, "answer")
			if calls != 1 {
				t.Fatalf("handed off %d times for one Read that would wait, want 1", calls)
			}

			refused := errors.New("the service is gone")
			h.Func = func() error { return refused }
			if n, err := reads.Read(make([]byte, 64)); n != 0 || !errors.Is(err, refused) {
				t.Fatalf("Read = %d, %v; want the hand-off's error", n, err)
			}

			h.Func = func() error { return nil }
			peer.Close()
			if n, err := reads.Read(make([]byte, 64)); n != 0 || err != io.EOF {
				t.Fatalf("Read at the peer's end = %d, %v; want 0, EOF", n, err)
			}
		})
	}
}

// TestHandOffKeepsTCPConn: the connection made of a *net.TCPConn keeps
// its methods, so that net.Buffers still writes with one writev and
// Readiness still finds the socket.
func TestHandOffKeepsTCPConn(t *testing.T) {
	_, b := pair(t)
	reads, _ := netutil.NewHandOff(b)
	if _, ok := reads.(syscall.Conn); !ok {
		t.Fatalf("NewHandOff(*net.TCPConn) = %T, which hides the *net.TCPConn's methods", reads)
	}
	if err := netutil.CloseWrite(reads); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
}
