package relay_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/porthole/porthole/internal/netutil"
	"github.com/porthole/porthole/internal/relay"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestPipeSplices checks that Pipe between two TCP connections, one with
// handshake bytes in front, moves data without user-space copy buffers: an
// io.Copy through a buffer would allocate 32 KiB per direction.
func TestPipeSplices(t *testing.T) {
	client, a := tcpPair(t)
	b, service := tcpPair(t)
	prefix := []byte("read ahead during the handshake")
	payload := make([]byte, 8<<20)
	rand.Read(payload)
	want := append(bytes.Clone(prefix), payload...)
	got := make([]byte, len(want))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan relay.Stats, 1)
	go func() {
		st, err := relay.Pipe(netutil.WithPrefix(a, prefix), b)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	// The service echoes; the client sends, half-closes, and reads it back.
	go func() {
		io.Copy(service, service)
		service.CloseWrite()
	}()
	go func() {
		client.Write(payload)
		client.CloseWrite()
	}()
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the echo: read %d bytes, %v; want EOF", n, err)
	}
	st := <-done
	runtime.ReadMemStats(&after)

	if !bytes.Equal(got, want) {
		t.Fatalf("echoed %d bytes, want %d (prefix first, then the payload)", len(got), len(want))
	}
	if st.AToB != int64(len(want)) || st.BToA != int64(len(want)) {
		t.Errorf("stats %+v, want %d each way", st, len(want))
	}
	// Every copy here is TCP to TCP, so nothing should need a buffer; a
	// buffered relay would allocate 32 KiB for each direction.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<10 {
		t.Errorf("relay allocated %d bytes moving %d: not on the splice path", alloc, len(want))
	}
}
