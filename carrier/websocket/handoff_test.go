package websocket_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/porthole/porthole/carrier/websocket"
	"github.com/porthole/porthole/internal/testgw"
)

// errServiceGone is failingWriter's error.
var errServiceGone = errors.New("the service is gone")

// failingWriter is a service whose every write fails.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errServiceGone }

// TestHandOffWriteFails: a tunnel's WriteTo, holding part of a message
// whose rest has not come, writes it before it waits; when that write
// fails, WriteTo ends at once with the write's error, without waiting for
// the client's next bytes.
func TestHandOffWriteFails(t *testing.T) {
	forBoth(t, func(t *testing.T, useTLS bool) {
		s := &websocket.Server{PingInterval: -1}
		ended := make(chan error, 1)
		srv, cfg := testgw.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := s.Accept(w, r)
			if err != nil {
				ended <- err
				return
			}
			defer c.Close()
			_, err = c.(io.WriterTo).WriteTo(failingWriter{})
			ended <- err
		}), useTLS)
		addr := srv.Listener.Addr().String()
		var conn net.Conn
		var err error
		if useTLS {
			conn, err = tls.Dial("tcp", addr, cfg)
		} else {
			conn, err = net.Dial("tcp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(waitLimit))
		if resp, body := testgw.Ask(t, conn, testgw.WSRequest(addr, "/")); resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake answered %s %q", resp.Status, body)
		}
		// Less than the relay's buffer of a frame that claims more.
		f := testgw.Frame{Fin: true, Op: testgw.OpBinary, Masked: true, Length: 1 << 20, Payload: bytes.Repeat([]byte("h"), 5000)}
		if _, err := conn.Write(f.Bytes()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-ended:
			if !errors.Is(err, errServiceGone) {
				t.Fatalf("WriteTo returned %v, want the service's write error", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("WriteTo still waits for the rest of the frame after the service's write failed")
		}
	})
}
