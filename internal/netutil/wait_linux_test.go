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
		if !readable(t, rb) {
			t.Fatal("not Readable with 5 bytes queued")
		}
		io.ReadFull(b, make([]byte, 5))
		if readable(t, rb) {
			t.Fatal("Readable once the bytes were read")
		}
		a.CloseWrite()
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
		queued(t, server.NetConn().(*net.TCPConn))
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

// queued waits until c's socket has bytes to read.
func queued(t *testing.T, c *net.TCPConn) {
	t.Helper()
	if _, err := waiter(t, c).Queued(); err != nil {
		t.Fatal(err)
	}
}

// waiter makes a Waiter on c and fails the test when it cannot.
func waiter(t testing.TB, c *net.TCPConn) *netutil.Waiter {
	t.Helper()
	w, ok := netutil.NewWaiter(c)
	if !ok {
		t.Fatal("no Waiter on a TCP connection")
	}
	return w
}

// TestWaiter: Readable and Queued tell bytes from the peer's end, whether
// these came before the wait or while it was parked; Queued counts the
// bytes. The parked cases take the path in which Queued asks the count
// before it peeks.
func TestWaiter(t *testing.T) {
	type result struct {
		eof bool
		n   int
		err error
	}
	readable := func(w *netutil.Waiter) result { eof, err := w.Readable(); return result{eof: eof, err: err} }
	queued := func(w *netutil.Waiter) result { n, err := w.Queued(); return result{n: n, err: err} }
	for name, wait := range map[string]func(*netutil.Waiter) result{"Readable": readable, "Queued": queued} {
		t.Run(name, func(t *testing.T) {
			a, b := pair(t)
			w := waiter(t, b)
			check := func(when string, got result, bytes bool) {
				t.Helper()
				want := result{eof: !bytes}
				if name == "Queued" {
					want = result{}
					if bytes {
						want.n = 5
					}
				}
				if got != want {
					t.Fatalf("%s %s = %+v, want %+v", name, when, got, want)
				}
			}
			a.Write([]byte("hello"))
			check("with bytes queued", wait(w), true)
			io.ReadFull(b, make([]byte, 5))

			parked := make(chan result, 1)
			go func() { parked <- wait(w) }()
			a.Write([]byte("again"))
			check("parked, then bytes", <-parked, true)
			io.ReadFull(b, make([]byte, 5))

			go func() { parked <- wait(w) }()
			a.CloseWrite()
			check("parked, then the peer's end", <-parked, false)
			check("after the peer's end", wait(w), false)
		})
	}
}

// BenchmarkWaiter is the relay's wait on its hot path with bytes queued:
// no allocation.
func BenchmarkWaiter(b *testing.B) {
	a, c := pair(b)
	a.Write([]byte("x"))
	w := waiter(b, c)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := w.Queued(); n != 1 || err != nil {
			b.Fatalf("Queued = %d, %v", n, err)
		}
	}
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
