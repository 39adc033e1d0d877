package netutil_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/porthole/porthole/internal/netutil"
	"github.com/porthole/porthole/internal/tlsutil"
)

// tlsEnds returns both ends of a TLS connection over loopback TCP, with
// the handshake done.
func tlsEnds(t *testing.T) (client, server *tls.Conn) {
	t.Helper()
	cert, err := tlsutil.SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	a, b := pair(t)
	client = tls.Client(a, &tls.Config{InsecureSkipVerify: true})
	server = tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return client, server
}

// tlsPair returns both ends of a TLS connection over loopback TCP, each
// passed through SafeDeadlines.
func tlsPair(t *testing.T) (net.Conn, net.Conn, func()) {
	t.Helper()
	client, server := tlsEnds(t)
	c1, c2 := netutil.SafeDeadlines(client), netutil.SafeDeadlines(server)
	if _, ok := c1.(*netutil.DeadlineConn); !ok {
		t.Fatalf("SafeDeadlines(*tls.Conn) = %T, want *netutil.DeadlineConn", c1)
	}
	return c1, c2, func() { c1.Close(); c2.Close() }
}

// TestDeadlineConnContract runs the net.Conn contract on TLS connections:
// a plain *tls.Conn fails its timeout cases, because a timed-out write
// leaves it corrupt.
func TestDeadlineConnContract(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		c1, c2, stop := tlsPair(t)
		return c1, c2, stop, nil
	})
}

// TestDeadlineConnKeepsBytesOrder: a Write cut short by its deadline
// counts what it handed over; after the deadline is lifted, the stream
// goes on in order and CloseWrite ends it after everything written.
func TestDeadlineConnKeepsBytesOrder(t *testing.T) {
	c1, c2, stop := tlsPair(t)
	defer stop()
	var sent bytes.Buffer
	c1.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for i := 0; ; i++ {
		n, err := c1.Write(chunk)
		sent.Write(chunk[:n])
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write %d: %v, want a deadline error", i, err)
			}
			break
		}
		if i > 10_000 {
			t.Fatal("no write timed out although nobody reads")
		}
	}
	c1.SetWriteDeadline(time.Time{})
	tail := []byte("the end")
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c2)
		got <- b
	}()
	if _, err := c1.Write(tail); err != nil {
		t.Fatalf("write after the deadline was lifted: %v", err)
	}
	sent.Write(tail)
	if err := c1.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, sent.Bytes()) {
			t.Fatalf("peer read %d bytes, want the %d written, in order", len(b), sent.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer did not see EOF after CloseWrite")
	}
}

func TestSafeDeadlinesLeavesTCPAlone(t *testing.T) {
	a, _ := pair(t)
	if c := netutil.SafeDeadlines(a); c != net.Conn(a) {
		t.Errorf("SafeDeadlines(*net.TCPConn) = %T, want the conn itself", c)
	}
}
