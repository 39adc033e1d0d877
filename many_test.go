package porthole_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/gateway"
)

const (
	manyTunnels = 200
	perTunnel   = 4 << 20
)

// TestManyTunnels opens 200 tunnels, all open at once, and sends 4 MiB of
// random data through each to an echo, both ways at the same time. Each
// tunnel sends a different stream (the same random block, rotated), so
// crossed streams are caught as well as lost or damaged bytes.
func TestManyTunnels(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1.6 GiB through the gateway")
	}
	gw := startGateway(t, gateway.Options{})
	block := make([]byte, perTunnel)
	rand.Read(block)
	for _, path := range []string{"/tcp", "/echo"} {
		t.Run(path[1:], func(t *testing.T) {
			start := time.Now()
			conns := dialMany(t, gw.URL+path, manyTunnels)
			if n := gw.OpenTunnels(); n != manyTunnels {
				t.Fatalf("the gateway counts %d open tunnels, want %d", n, manyTunnels)
			}
			var wg sync.WaitGroup
			for i, c := range conns {
				wg.Go(func() {
					if err := checkStream(c, block, i*(perTunnel/manyTunnels)+i); err != nil {
						t.Errorf("tunnel %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			t.Logf("%d tunnels × %d MiB both ways in %v", manyTunnels, perTunnel>>20, time.Since(start).Round(time.Millisecond))
		})
	}
}

// dialMany opens n tunnels at once.
func dialMany(t *testing.T, url string, n int) []net.Conn {
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { conns[i] = mustDial(t, url, nil, time.Minute) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return conns
}

// checkStream sends block rotated by shift on c, half-closes, and checks
// that what comes back has the same length and SHA-256.
func checkStream(c net.Conn, block []byte, shift int) error {
	stream := [][]byte{block[shift:], block[:shift]}
	want := sha256.New()
	for _, b := range stream {
		want.Write(b)
	}
	wrote := make(chan error, 1)
	go func() {
		for _, b := range stream {
			if _, err := c.Write(b); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- c.(closeWriter).CloseWrite()
	}()
	got := sha256.New()
	n, rerr := io.Copy(got, c)
	if werr := <-wrote; werr != nil {
		return fmt.Errorf("sending: %w", werr)
	}
	if rerr != nil {
		return fmt.Errorf("receiving after %d bytes: %w", n, rerr)
	}
	if n != int64(len(block)) || string(got.Sum(nil)) != string(want.Sum(nil)) {
		return fmt.Errorf("received %d bytes with SHA-256 %x, sent %d with %x", n, got.Sum(nil), len(block), want.Sum(nil))
	}
	return nil
}
