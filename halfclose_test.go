package porthole_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// afterEOF serves one stream: it reads until EOF and only then sends its
// reply, so a client sees the reply only if its half-close reached the
// service as EOF and the way back stayed open.
func afterEOF(c net.Conn) {
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	fmt.Fprintf(c, "EOF after %d bytes, err %v", n, err)
}

// afterEOFServer runs afterEOF as a TCP backend and returns its address.
func afterEOFServer(t *testing.T) string {
	return testgw.TCPServer(t, afterEOF)
}

// halfCloseGateway starts a gateway whose routes answer a client that
// sends 1 MiB and half-closes: the echo and a TCP echo backend send it
// back, two services reply only after the client's EOF. It returns the
// bytes to send and each route's expected reply.
func halfCloseGateway(t *testing.T) (gw *testgw.Gateway, sent []byte, replies map[string][]byte) {
	gw = startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/echo", Service: service.Echo{}},
		{Path: "/tcp", Service: &service.TCP{Addr: testgw.EchoServer(t)}},
		{Path: "/tcp-after-eof", Service: &service.TCP{Addr: afterEOFServer(t)}},
		{Path: "/handler-after-eof", Service: service.Handler(afterEOF)},
	}})
	sent = make([]byte, 1<<20)
	rand.Read(sent)
	afterEOFReply := []byte(fmt.Sprintf("EOF after %d bytes, err <nil>", len(sent)))
	return gw, sent, map[string][]byte{
		"/echo":              sent,
		"/tcp":               sent,
		"/tcp-after-eof":     afterEOFReply,
		"/handler-after-eof": afterEOFReply,
	}
}

// TestHalfClose moves 1 MiB each way over every carrier: to the echo, to
// a TCP echo backend, and to services that reply only after the client's
// CloseWrite. The client half-closes and still reads the whole reply, then
// EOF.
func TestHalfClose(t *testing.T) {
	gw, sent, routes := halfCloseGateway(t)
	for _, b := range bases(gw) {
		for path, want := range routes {
			t.Run(b.name+path, func(t *testing.T) {
				conn := mustDial(t, b.url+path, b.d, waitLimit)
				got := sendThenCloseWrite(t, conn, sent)
				if !bytes.Equal(got, want) {
					t.Fatalf("after CloseWrite the client received %d bytes %.40q, want %d bytes %.40q", len(got), got, len(want), want)
				}
				if n, err := conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Errorf("Read after the end = %d, %v; want 0, EOF", n, err)
				}
			})
		}
	}
}

// TestServiceEnds: over every carrier, a service that sends and closes
// ends the client's stream with EOF after every byte, though the client
// never half-closed.
func TestServiceEnds(t *testing.T) {
	payload := make([]byte, 3<<20+3)
	rand.Read(payload)
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/send", Service: service.Handler(func(c net.Conn) {
			c.Write(payload)
			c.Close()
		})},
	}})
	for _, b := range bases(gw) {
		t.Run(b.name, func(t *testing.T) {
			conn := mustDial(t, b.url+"/send", b.d, waitLimit)
			got, err := io.ReadAll(conn)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("ReadAll = %d bytes, %v; want the %d sent, then EOF", len(got), err, len(payload))
			}
		})
	}
}

// sendThenCloseWrite writes data and half-closes conn while reading, and
// returns all conn gave until EOF.
func sendThenCloseWrite(t *testing.T, conn net.Conn, data []byte) []byte {
	t.Helper()
	cw, ok := conn.(closeWriter)
	if !ok {
		t.Fatalf("the tunnel %T has no CloseWrite", conn)
	}
	wrote := make(chan error, 1)
	go func() {
		if _, err := conn.Write(data); err != nil {
			wrote <- err
			return
		}
		wrote <- cw.CloseWrite()
	}()
	got, err := io.ReadAll(conn)
	if werr := <-wrote; werr != nil {
		t.Fatalf("write and CloseWrite: %v", werr)
	}
	if err != nil {
		t.Fatalf("reading after CloseWrite: %v (got %d bytes)", err, len(got))
	}
	return got
}
