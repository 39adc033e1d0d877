package netutil_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/netutil"
)

const waitLimit = 10 * time.Second

// pair returns the two ends of a loopback TCP connection, closed when the
// test ends, whose reads and writes fail after waitLimit.
func pair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.DialTimeout("tcp", ln.Addr().String(), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{a, b} {
		c.SetDeadline(time.Now().Add(waitLimit))
		t.Cleanup(func() { c.Close() })
	}
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

func TestWithPrefixEmptyKeepsConn(t *testing.T) {
	a, _ := pair(t)
	if c := netutil.WithPrefix(a, nil); c != net.Conn(a) {
		t.Fatalf("WithPrefix(conn, nil) = %T, want the *net.TCPConn itself (the splice path)", c)
	}
}

// TestPrefixConnReads reads through a small buffer: the prefix comes first,
// whole, then the connection's bytes; Split still sees the unread prefix.
func TestPrefixConnReads(t *testing.T) {
	a, peer := pair(t)
	c := netutil.WithPrefix(a, []byte("prefix|"))
	if p, under := netutil.Split(c); string(p) != "prefix|" || under != net.Conn(a) {
		t.Fatalf("Split = %q, %T; want the prefix and the connection", p, under)
	}
	io.WriteString(peer, "stream")
	peer.CloseWrite()
	var got []byte
	buf := make([]byte, 4)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "prefix|stream" {
		t.Fatalf("read %q, want %q", got, "prefix|stream")
	}
}

// TestPrefixConnCloseWrite checks that CloseWrite, hidden by embedding, is
// forwarded: the peer sees EOF and can still send.
func TestPrefixConnCloseWrite(t *testing.T) {
	a, peer := pair(t)
	c := netutil.WithPrefix(a, []byte("x"))
	if err := netutil.CloseWrite(c); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the peer read %d, %v; want EOF", n, err)
	}
	io.WriteString(peer, "y")
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "xy" {
		t.Fatalf("read %q, %v after CloseWrite; want %q", got, err, "xy")
	}
}

func TestCloseWriteUnsupported(t *testing.T) {
	c, _ := net.Pipe()
	defer c.Close()
	if err := netutil.CloseWrite(c); !errors.Is(err, netutil.ErrNoCloseWrite) {
		t.Fatalf("CloseWrite(net.Pipe end) = %v, want ErrNoCloseWrite", err)
	}
}

// TestPrefixConnConcurrentReads reads from several goroutines at once, as
// the net.Conn contract allows: every byte, prefix and stream, must be
// delivered exactly once, and -race must see no race.
func TestPrefixConnConcurrentReads(t *testing.T) {
	a, peer := pair(t)
	prefix := make([]byte, 4096)
	for i := range prefix {
		prefix[i] = byte(i % 251)
	}
	c := netutil.WithPrefix(a, prefix)
	stream := bytes.Repeat([]byte{255}, 4096)
	peer.Write(stream)
	peer.CloseWrite()
	var (
		mu  sync.Mutex
		got []byte
		wg  sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			buf := make([]byte, 7)
			for {
				n, err := c.Read(buf)
				mu.Lock()
				got = append(got, buf[:n]...)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	want := append(bytes.Clone(prefix), stream...)
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if !bytes.Equal(got, want) {
		t.Fatalf("concurrent reads delivered %d bytes, want each of the %d exactly once", len(got), len(want))
	}
}

// TestPrefixConnReadAfterClose checks the contract's use after close: a
// Read returns net.ErrClosed, even with prefix bytes left unread.
func TestPrefixConnReadAfterClose(t *testing.T) {
	a, _ := pair(t)
	c := netutil.WithPrefix(a, []byte("unread"))
	c.Close()
	if n, err := c.Read(make([]byte, 8)); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %d, %v; want 0, net.ErrClosed", n, err)
	}
}
