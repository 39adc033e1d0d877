package netutil_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/net/nettest"

	"github.com/porthole/porthole/internal/netutil"
)

// fragile is a connection that asks SafeDeadlines to guard both
// directions, as the WebSocket carrier's does.
type fragile struct{ *net.TCPConn }

func (fragile) FragileDeadlines()   {}
func (f fragile) CloseWrite() error { return f.TCPConn.CloseWrite() }

// fragilePair returns both ends of a loopback TCP connection, each marked
// fragile and passed through SafeDeadlines.
func fragilePair(t *testing.T) (net.Conn, net.Conn, func()) {
	t.Helper()
	a, b := pair(t)
	c1, c2 := netutil.SafeDeadlines(fragile{a}), netutil.SafeDeadlines(fragile{b})
	if _, ok := c1.(*netutil.DeadlineConn); !ok {
		t.Fatalf("SafeDeadlines(Fragile) = %T, want *netutil.DeadlineConn", c1)
	}
	return c1, c2, func() { c1.Close(); c2.Close() }
}

// TestFragileContract runs the net.Conn contract with both directions
// guarded.
func TestFragileContract(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		c1, c2, stop := fragilePair(t)
		return c1, c2, stop, nil
	})
}

// TestFragileReadKeepsEveryByte reads a stream of many small writes in
// small reads: every byte arrives, in order. (A background read that
// finished while Read waited once had its bytes replaced by the next one.)
func TestFragileReadKeepsEveryByte(t *testing.T) {
	c1, c2, stop := fragilePair(t)
	defer stop()
	var want bytes.Buffer
	for i := range 20_000 {
		want.WriteByte(byte(i % 251))
	}
	go func() {
		b := want.Bytes()
		for len(b) > 0 {
			n := min(len(b), 3)
			if _, err := c1.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		c1.(interface{ CloseWrite() error }).CloseWrite()
	}()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 2)
	for {
		n, err := c2.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes, want the %d written in order (equal prefix %d)", len(got), want.Len(), commonPrefix(got, want.Bytes()))
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// dataErrConn returns its last bytes together with io.EOF, as
// io.Reader allows.
type dataErrConn struct {
	net.Conn
	r io.Reader
}

func (c dataErrConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (dataErrConn) FragileDeadlines()            {}

// TestFragileReadDataBeforeError: bytes that came with an error are
// returned first, the error after them.
func TestFragileReadDataBeforeError(t *testing.T) {
	a, _ := pair(t)
	c := netutil.SafeDeadlines(dataErrConn{a, iotest.DataErrReader(strings.NewReader("last bytes"))})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if string(got) != "last bytes" || err != nil {
		t.Fatalf("ReadAll = %q, %v; want %q, nil", got, err, "last bytes")
	}
}
