package netutil_test

import (
	"io"
	"net"
	"testing"

	"github.com/porthole/porthole/internal/netutil"
)

// queued calls netutil.Queued and fails the test when it cannot tell.
func queued(t *testing.T, c net.Conn) int {
	t.Helper()
	n, ok := netutil.Queued(c)
	if !ok {
		t.Fatalf("Queued(%T) cannot tell", c)
	}
	return n
}

// TestQueued: Queued counts the bytes that have arrived and are not read
// yet, on a TCP socket, behind a prefix, and beneath TLS; it waits for
// nothing.
func TestQueued(t *testing.T) {
	t.Run("TCP", func(t *testing.T) {
		a, b := pair(t)
		if n := queued(t, b); n != 0 {
			t.Fatalf("Queued before any write = %d, want 0", n)
		}
		a.Write([]byte("hello"))
		if n, _, err := netutil.WaitQueued(b); err != nil || n != 5 {
			t.Fatalf("WaitQueued = %d, %v; want 5", n, err)
		}
		if n := queued(t, b); n != 5 {
			t.Fatalf("Queued after 5 bytes arrived = %d", n)
		}
		io.ReadFull(b, make([]byte, 2))
		if n := queued(t, b); n != 3 {
			t.Fatalf("Queued after reading 2 of 5 = %d", n)
		}
		if n := queued(t, netutil.WithPrefix(b, []byte("xy"))); n != 5 {
			t.Fatalf("Queued with a 2-byte prefix and 3 bytes queued = %d", n)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		client, server := tlsEnds(t)
		client.Write([]byte("hello"))
		record, _, err := netutil.WaitQueued(server.NetConn().(*net.TCPConn))
		if err != nil || record <= 5 {
			t.Fatalf("WaitQueued beneath TLS = %d, %v; want the record, over 5 bytes", record, err)
		}
		if n := queued(t, server); n != record {
			t.Fatalf("Queued(*tls.Conn) = %d, want the %d bytes queued beneath it", n, record)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(server, got); err != nil || string(got) != "hello" {
			t.Fatalf("reading the record: %q, %v", got, err)
		}
		if n := queued(t, server); n != 0 {
			t.Fatalf("Queued after the record was read = %d", n)
		}
	})
	t.Run("NoSocket", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if n, ok := netutil.Queued(a); ok {
			t.Fatalf("Queued(net.Pipe) = %d, true; want false", n)
		}
	})
}
