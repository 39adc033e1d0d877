package websocket_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/porthole/porthole/carrier/websocket"
	"github.com/porthole/porthole/gateway"
)

// TestLargeWriteFitsTheLimit: one Write of several times MaxMessageSent
// goes out as messages of at most that size, so a gateway whose message
// limit is MaxMessageSent echoes all of it rather than closing with 1009.
func TestLargeWriteFitsTheLimit(t *testing.T) {
	gw := start(t, gateway.Options{MaxMessageBytes: websocket.MaxMessageSent})
	u, err := url.Parse(gw.URL + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tun, _, err := websocket.Handshake(ctx, nc, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	tun.SetDeadline(time.Now().Add(waitLimit))

	sent := bytes.Repeat([]byte("0123456789abcdef"), 3*websocket.MaxMessageSent/16+1)
	werr := make(chan error, 1)
	go func() { _, err := tun.Write(sent); werr <- err }()
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(tun, got); err != nil {
		t.Fatalf("reading the echo of a %d-byte write: %v", len(sent), err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("writing %d bytes: %v", len(sent), err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("the echo differs from what was written")
	}
}
