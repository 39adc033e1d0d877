package porthole_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/porthole/porthole"
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

func TestHalfClose(t *testing.T) {
	gw, sent, routes := halfCloseGateway(t)
	for _, base := range []struct {
		name, url string
		d         *porthole.Dialer
	}{
		{"http", gw.URL, nil},
		{"https", gw.TLSURL, &porthole.Dialer{Fingerprint: gw.Pin}},
	} {
		for path, want := range routes {
			t.Run(base.name+path, func(t *testing.T) {
				conn := mustDial(t, base.url+path, base.d, waitLimit)
				got := sendThenCloseWrite(t, conn, sent)
				if !bytes.Equal(got, want) {
					t.Fatalf("after CloseWrite the client received %d bytes %.40q, want %d bytes %.40q", len(got), got, len(want), want)
				}
			})
		}
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
