package netutil_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/porthole/porthole/internal/netutil"
)

// streamOf returns n bytes of a pattern whose period (251) is prime to
// every chunk size, so that a lost, repeated or reordered chunk shows.
func streamOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// writeInPieces writes b to c in pieces of the given sizes, cycled, then
// half-closes c.
func writeInPieces(c net.Conn, b []byte, sizes ...int) error {
	for i := 0; len(b) > 0; i++ {
		n := min(len(b), sizes[i%len(sizes)])
		if _, err := c.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return c.(interface{ CloseWrite() error }).CloseWrite()
}

// TestFragileWriteToKeepsEveryByte: WriteTo, the relay's path out of a
// guarded connection, writes each background read's bytes while the next
// read fills another buffer; every byte arrives once and in order, in
// pieces smaller and larger than a read.
func TestFragileWriteToKeepsEveryByte(t *testing.T) {
	c1, c2, stop := fragilePair(t)
	defer stop()
	want := streamOf(4 << 20)
	errc := make(chan error, 1)
	go func() { errc <- writeInPieces(c1, want, 7, 100<<10, 1, 300<<10) }()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	n, err := c2.(io.WriterTo).WriteTo(&got)
	if err != nil {
		t.Fatalf("WriteTo after %d bytes: %v", n, err)
	}
	if n != int64(got.Len()) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("WriteTo = %d, wrote %d bytes; want the %d sent, in order (equal prefix %d)", n, got.Len(), len(want), commonPrefix(got.Bytes(), want))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// signalWriter collects bytes and signals each Write.
type signalWriter struct {
	bytes.Buffer
	wrote chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// TestFragileWriteToDeadline: a read deadline that passes while WriteTo
// waits ends it with a timeout, having written what came before; bytes
// that come after are read by the next WriteTo, none lost.
func TestFragileWriteToDeadline(t *testing.T) {
	c1, c2, stop := fragilePair(t)
	defer stop()
	if _, err := c1.Write([]byte("before ")); err != nil {
		t.Fatal(err)
	}
	w := &signalWriter{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		_, err := c2.(io.WriterTo).WriteTo(w)
		done <- err
	}()
	select {
	case <-w.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("WriteTo wrote nothing of the bytes sent")
	}
	c2.SetReadDeadline(time.Now())
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteTo = %v, want a deadline error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteTo did not return after its read deadline passed")
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := writeInPieces(c1, []byte("after"), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.(io.WriterTo).WriteTo(w); err != nil {
		t.Fatalf("WriteTo after the deadline was lifted: %v", err)
	}
	if got := w.String(); got != "before after" {
		t.Fatalf("wrote %q, want %q", got, "before after")
	}
}

// endlessReader reads a streamOf pattern without end, counting the bytes.
type endlessReader struct{ n int }

func (r *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte((r.n + i) % 251)
	}
	r.n += len(p)
	return len(p), nil
}

// TestDeadlineConnReadFromKeepsBytesOrder: ReadFrom, the relay's path
// into a guarded connection, cut short by its write deadline, counts what
// it handed over; after the deadline is lifted the stream goes on in
// order and CloseWrite ends it after everything written.
func TestDeadlineConnReadFromKeepsBytesOrder(t *testing.T) {
	c1, c2, stop := tlsPair(t)
	defer stop()
	src := &endlessReader{}
	c1.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c1.(io.ReaderFrom).ReadFrom(src)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom an endless source, nobody reading = %d, %v; want a deadline error", n, err)
	}
	if n != int64(src.n) {
		t.Fatalf("ReadFrom = %d, but read %d bytes from its source: a timeout must keep them", n, src.n)
	}
	c1.SetWriteDeadline(time.Time{})
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c2)
		got <- b
	}()
	if _, err := c1.(io.ReaderFrom).ReadFrom(io.LimitReader(src, 1000)); err != nil {
		t.Fatalf("ReadFrom after the deadline was lifted: %v", err)
	}
	if err := c1.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if want := streamOf(src.n); !bytes.Equal(b, want) {
			t.Fatalf("peer read %d bytes, want the %d read from the source, in order (equal prefix %d)", len(b), len(want), commonPrefix(b, want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer did not see EOF after CloseWrite")
	}
}

// TestFragileReadFromTCP: from a TCP source, as the relay calls it,
// ReadFrom waits for bytes holding no buffer and carries everything to
// the source's EOF before it returns.
func TestFragileReadFromTCP(t *testing.T) {
	c1, c2, stop := fragilePair(t)
	defer stop()
	srcA, srcB := pair(t)
	want := streamOf(3 << 20)
	errc := make(chan error, 1)
	go func() { errc <- writeInPieces(srcA, want, 5, 70<<10, 600<<10) }()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c2)
		got <- b
	}()
	n, err := c1.(io.ReaderFrom).ReadFrom(srcB)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, len(want))
	}
	// ReadFrom returns once all is written, as Write does: a Close right
	// after it loses nothing.
	c1.Close()
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("peer read %d bytes, want the %d sent, in order (equal prefix %d)", len(b), len(want), commonPrefix(b, want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer did not see EOF after Close")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// pipeFragile is one end of a net.Pipe, marked fragile: its writes wait
// for the peer's reads.
type pipeFragile struct{ net.Conn }

func (pipeFragile) FragileDeadlines() {}

// TestFragileReadFromWaitsForTheLastChunk: a source whose last bytes come
// with its EOF ends ReadFrom only once they are written, as Write would,
// within the write deadline: here nobody reads them, so ReadFrom times
// out instead of reporting them written.
func TestFragileReadFromWaitsForTheLastChunk(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := netutil.SafeDeadlines(pipeFragile{a})
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.(io.ReaderFrom).ReadFrom(iotest.DataErrReader(strings.NewReader("last bytes")))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom with nobody reading = %d, %v; want a deadline error", n, err)
	}
}

// sizeRecorder is a connection marked fragile that records the size of
// each Write it passes on.
type sizeRecorder struct {
	net.Conn
	sizes chan int
}

func (sizeRecorder) FragileDeadlines() {}

func (r sizeRecorder) Write(p []byte) (int, error) {
	r.sizes <- len(p)
	return r.Conn.Write(p)
}

// TestReadFromGrowsForBulk: ReadFrom reads a source into a 32 KiB chunk,
// as io.Copy would, and moves to 256 KiB chunks once a read fills one: a
// source that keeps it waiting holds no large buffer, and a bulk
// transfer takes few large writes.
func TestReadFromGrowsForBulk(t *testing.T) {
	a, b := pair(t)
	rec := sizeRecorder{a, make(chan int, 8)}
	c := netutil.SafeDeadlines(rec)
	defer c.Close()
	go io.Copy(io.Discard, b)
	const total = 32<<10 + 2*256<<10 + 10
	if n, err := c.(io.ReaderFrom).ReadFrom(io.LimitReader(&endlessReader{}, total)); n != total || err != nil {
		t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, total)
	}
	close(rec.sizes)
	var got []int
	for n := range rec.sizes {
		got = append(got, n)
	}
	want := []int{32 << 10, 256 << 10, 256 << 10, 10}
	if !slices.Equal(got, want) {
		t.Fatalf("writes of %v bytes, want %v", got, want)
	}
}
