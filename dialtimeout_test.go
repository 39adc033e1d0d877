package porthole_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/internal/testgw"
)

// silentServer accepts connections and reads them without ever answering:
// a gateway stuck in the handshake. It returns its http:// URL.
func silentServer(t *testing.T) string {
	addr := testgw.TCPServer(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(io.Discard, c) // until the client gives up and closes
	})
	return "http://" + addr + "/echo"
}

// TestDialHandshakeTimeout checks that a gateway that never answers the
// handshake is given up at Dial's context deadline or at
// Dialer.HandshakeTimeout, with an error wrapping context.DeadlineExceeded.
func TestDialHandshakeTimeout(t *testing.T) {
	const limit = 200 * time.Millisecond
	url := silentServer(t)
	for name, dial := range map[string]func() (net.Conn, error){
		"Context": func() (net.Conn, error) {
			ctx, cancel := context.WithTimeout(t.Context(), limit)
			defer cancel()
			return porthole.Dial(ctx, url, nil)
		},
		"HandshakeTimeout": func() (net.Conn, error) {
			return porthole.Dial(dialContext(t), url, &porthole.Dialer{HandshakeTimeout: limit})
		},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			conn, err := dial()
			if err == nil {
				conn.Close()
				t.Fatal("Dial to a silent gateway succeeded")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Dial to a silent gateway: %v, want an error wrapping context.DeadlineExceeded", err)
			}
			if elapsed := time.Since(start); elapsed < limit || elapsed > limit+2*time.Second {
				t.Errorf("Dial gave up after %v, want about %v", elapsed, limit)
			}
		})
	}
}
