package relay_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/netutil"
	"github.com/porthole/porthole/internal/relay"
)

const waitLimit = 10 * time.Second

// pair is tcpPair (splice_test.go) with reads and writes that fail after
// waitLimit, so a test that hangs fails instead.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	a, b := tcpPair(t)
	for _, c := range []net.Conn{a, b} {
		c.SetDeadline(time.Now().Add(waitLimit))
	}
	return a, b
}

type result struct {
	stats relay.Stats
	err   error
}

// startPipe runs relay.Pipe(a, b) and returns where its result arrives.
// The peers are the far ends: pa talks to a, pb to b.
func startPipe(t *testing.T, a, b net.Conn) <-chan result {
	ch := make(chan result, 1)
	go func() {
		st, err := relay.Pipe(a, b)
		ch <- result{st, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatal("Pipe did not return")
		return result{}
	}
}

// send writes msg on c and half-closes it.
func send(t *testing.T, c *net.TCPConn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// receive reads c until EOF and checks it got msg.
func receive(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q then EOF", got, err, msg)
	}
}

// TestPipeHalfClose half-closes one side, checks the other direction still
// flows, then half-closes that too; starting from each side in turn.
func TestPipeHalfClose(t *testing.T) {
	for _, first := range []string{"a", "b"} {
		t.Run(first+"First", func(t *testing.T) {
			pa, a := pair(t)
			pb, b := pair(t)
			done := startPipe(t, a, b)
			if first == "a" {
				send(t, pa, "from a")
				receive(t, pb, "from a")
				send(t, pb, "b replies after a's EOF")
				receive(t, pa, "b replies after a's EOF")
			} else {
				send(t, pb, "from b")
				receive(t, pa, "from b")
				send(t, pa, "a replies after b's EOF")
				receive(t, pb, "a replies after b's EOF")
			}
			r := await(t, done)
			if r.err != nil {
				t.Fatalf("Pipe: %v, want nil after EOF both ways", r.err)
			}
			want := relay.Stats{AToB: 6, BToA: 23}
			if first == "b" {
				want = relay.Stats{AToB: 23, BToA: 6}
			}
			if r.stats != want {
				t.Errorf("Stats = %+v, want %+v", r.stats, want)
			}
		})
	}
}

var errBroken = errors.New("broken stream")

// failingReader is a conn whose reads fail: a direction that breaks.
type failingReader struct{ net.Conn }

func (failingReader) Read([]byte) (int, error) { return 0, errBroken }

// TestPipeErrorAborts breaks one direction while the other is idle and
// open: Pipe must close both connections at once and report the error,
// not wait for the idle direction to end.
func TestPipeErrorAborts(t *testing.T) {
	_, a := pair(t)
	pb, b := pair(t)
	done := startPipe(t, failingReader{a}, b)
	r := await(t, done)
	if !errors.Is(r.err, errBroken) {
		t.Fatalf("Pipe = %v, want the broken direction's error", r.err)
	}
	if n, err := pb.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("b's peer read %d, %v; want EOF, b closed", n, err)
	}
}

// TestPipeResetAborts resets one peer: the reset ends both directions.
func TestPipeResetAborts(t *testing.T) {
	pa, a := pair(t)
	pb, b := pair(t)
	done := startPipe(t, a, b)
	pb.SetLinger(0)
	pb.Close() // RST
	r := await(t, done)
	if r.err == nil {
		t.Fatal("Pipe = nil after a reset, want the reset's error")
	}
	if _, err := io.ReadAll(pa); err != nil {
		t.Fatalf("a's peer: %v, want EOF, a closed", err)
	}
}

// TestPipePrefixFirst gives a the bytes a carrier read ahead: they reach b
// before anything read from a's connection, and count in the stats.
func TestPipePrefixFirst(t *testing.T) {
	pa, a := pair(t)
	pb, b := pair(t)
	done := startPipe(t, netutil.WithPrefix(a, []byte("read ahead, ")), b)
	send(t, pa, "then the stream")
	receive(t, pb, "read ahead, then the stream")
	pb.CloseWrite()
	receive(t, pa, "")
	r := await(t, done)
	if r.err != nil || r.stats.AToB != int64(len("read ahead, then the stream")) {
		t.Fatalf("Pipe = %+v, %v; want %d bytes a to b", r.stats, r.err, len("read ahead, then the stream"))
	}
}

// TestLoop echoes a connection to itself, read-ahead bytes first, and
// half-closes it after the client's EOF.
func TestLoop(t *testing.T) {
	client, server := pair(t)
	done := make(chan result, 1)
	go func() {
		n, err := relay.Loop(netutil.WithPrefix(server, []byte("early ")))
		done <- result{relay.Stats{AToB: n}, err}
	}()
	send(t, client, "late")
	receive(t, client, "early late")
	r := await(t, done)
	if r.err != nil || r.stats.AToB != int64(len("early late")) {
		t.Fatalf("Loop = %d, %v; want %d bytes", r.stats.AToB, r.err, len("early late"))
	}
}
