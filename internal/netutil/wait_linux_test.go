package netutil_test

import (
	"io"
	"net"
	"testing"

	"github.com/porthole/porthole/internal/netutil"
)

// readable asks r and fails the test when it cannot tell.
func readable(t *testing.T, r *netutil.Readiness) bool {
	t.Helper()
	readable, ok := r.Readable()
	if !ok {
		t.Fatal("Readiness cannot tell")
	}
	return readable
}

// TestReadable: a Readiness tells, each time it is asked, whether bytes
// have arrived that are not read yet, on a TCP socket, behind a prefix,
// and beneath TLS, and the peer's EOF; it waits for nothing.
func TestReadable(t *testing.T) {
	t.Run("TCP", func(t *testing.T) {
		a, b := pair(t)
		rb := netutil.NewReadiness(b)
		if readable(t, rb) {
			t.Fatal("Readable before any write")
		}
		if !readable(t, netutil.NewReadiness(netutil.WithPrefix(b, []byte("xy")))) {
			t.Fatal("not Readable with a prefix to return")
		}
		a.Write([]byte("hello"))
		if eof, ok, err := netutil.WaitReadable(b); err != nil || !ok || eof {
			t.Fatalf("WaitReadable = %v, %v, %v; want bytes (false, true, nil)", eof, ok, err)
		}
		if n, _, err := netutil.WaitQueued(b); err != nil || n != 5 {
			t.Fatalf("WaitQueued = %d, %v; want 5", n, err)
		}
		if !readable(t, rb) {
			t.Fatal("not Readable with 5 bytes queued")
		}
		io.ReadFull(b, make([]byte, 5))
		if readable(t, rb) {
			t.Fatal("Readable once the bytes were read")
		}
		a.CloseWrite()
		if eof, ok, err := netutil.WaitReadable(b); err != nil || !ok || !eof {
			t.Fatalf("WaitReadable after the peer's EOF = %v, %v, %v; want EOF (true, true, nil)", eof, ok, err)
		}
		if n, _, err := netutil.WaitQueued(b); err != nil || n != 0 {
			t.Fatalf("WaitQueued after the peer's EOF = %d, %v; want 0", n, err)
		}
		if !readable(t, rb) {
			t.Fatal("not Readable at the peer's EOF")
		}
	})
	t.Run("TLS", func(t *testing.T) {
		client, server := tlsEnds(t)
		rs := netutil.NewReadiness(server)
		if readable(t, rs) {
			t.Fatal("Readable before any write")
		}
		client.Write([]byte("hello"))
		if _, _, err := netutil.WaitQueued(server.NetConn().(*net.TCPConn)); err != nil {
			t.Fatal(err)
		}
		if !readable(t, rs) {
			t.Fatal("not Readable with a record queued beneath TLS")
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(server, got); err != nil || string(got) != "hello" {
			t.Fatalf("reading the record: %q, %v", got, err)
		}
		if readable(t, rs) {
			t.Fatal("Readable once the record was read")
		}
	})
	t.Run("NoSocket", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if r, ok := netutil.NewReadiness(a).Readable(); ok {
			t.Fatalf("Readiness of a net.Pipe = %v, true; want ok false", r)
		}
	})
}

// BenchmarkReadiness is the relay's question on its hot path: the cost of
// one poll(2), and no allocation.
func BenchmarkReadiness(b *testing.B) {
	_, c := pair(b)
	r := netutil.NewReadiness(c)
	b.ReportAllocs()
	for b.Loop() {
		r.Readable()
	}
}
