package porthole_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// TestWebSocketRefusals: Dial over the WebSocket carrier reports the
// gateway's refusal as a *StatusError with its status and one-line
// reason.
func TestWebSocketRefusals(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	ws := "ws" + strings.TrimPrefix(gw.URL, "http")
	for _, rc := range []struct {
		name   string
		url    string
		header http.Header
		code   int
		reason string
	}{
		{"UnknownPath", ws + "/nope", nil, 404, "no route /nope"},
		{"DeadBackend", ws + "/dead", nil, 502, "connection refused"},
		{"ForeignOrigin", ws + "/echo", http.Header{"Origin": {"https://evil.example"}}, 403, "origin not allowed: https://evil.example"},
		{"OtherSubprotocol", ws + "/echo", http.Header{"Sec-WebSocket-Protocol": {"chat"}}, 400, `subprotocols ["chat"] are not supported`},
	} {
		t.Run(rc.name, func(t *testing.T) {
			conn, err := porthole.Dial(dialContext(t), rc.url, &porthole.Dialer{Header: rc.header})
			expectRefusal(t, conn, err, rc.code, rc.reason)
		})
	}
}

// TestWebSocketCloseWhileWriteBlocked: Close returns at once while a
// Write is stuck because the service reads nothing, and ends it.
func TestWebSocketCloseWhileWriteBlocked(t *testing.T) {
	done := make(chan struct{})
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/deaf", Service: service.Handler(func(c net.Conn) {
			<-done
			c.Close()
		})},
	}})
	t.Cleanup(func() { close(done) }) // before the gateway's shutdown
	conn := mustDial(t, "ws"+strings.TrimPrefix(gw.URL, "http")+"/deaf", nil, waitLimit)
	conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 64<<10)
	for {
		if _, err := conn.Write(buf); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write: %v, want a deadline error once the buffers are full", err)
			}
			break
		}
	}
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- conn.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close returned %v after %v", err, time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked behind a stuck Write")
	}
	if _, err := conn.Write(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestWebSocketIdleClientKept: a Dial client that sits idle with no Read
// outstanding, as a pooled database connection does, still answers the
// gateway's keep-alive pings, so the tunnel outlives many ping intervals.
func TestWebSocketIdleClientKept(t *testing.T) {
	const interval = 50 * time.Millisecond
	gw := startGateway(t, gateway.Options{PingInterval: interval})
	conn := mustDial(t, "ws"+strings.TrimPrefix(gw.URL, "http")+"/echo", nil, waitLimit)
	// The idleness under test: ten intervals with no call on the conn. A
	// client that answers no ping is cut after two.
	<-time.After(10 * interval)
	if _, err := io.WriteString(conn, "still there?"); err != nil {
		t.Fatalf("write after idling: %v", err)
	}
	buf := make([]byte, len("still there?"))
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatalf("the tunnel was cut while idle: %v", err)
	}
}
