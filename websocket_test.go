package porthole_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// wsBases are the ways Dial reaches a gateway over the WebSocket carrier:
// ws:// and wss:// URLs, and http:// with Dialer.Carrier.
func wsBases(gw *testgw.Gateway) []struct {
	name, url string
	d         *porthole.Dialer
} {
	return []struct {
		name, url string
		d         *porthole.Dialer
	}{
		{"ws", "ws" + strings.TrimPrefix(gw.URL, "http"), nil},
		{"wss", "wss" + strings.TrimPrefix(gw.TLSURL, "https"), &porthole.Dialer{Fingerprint: gw.Pin}},
		{"http+carrier", gw.URL, &porthole.Dialer{Carrier: "websocket"}},
	}
}

// TestWebSocketStreams moves 1 MiB each way through WebSocket tunnels
// from Dial: to the echo, to a TCP echo backend, and to services that
// reply only after the client's CloseWrite. The client half-closes and
// still reads the whole reply, then EOF.
func TestWebSocketStreams(t *testing.T) {
	gw, sent, routes := halfCloseGateway(t)
	for _, base := range wsBases(gw) {
		for path, want := range routes {
			t.Run(base.name+path, func(t *testing.T) {
				conn := mustDial(t, base.url+path, base.d, waitLimit)
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

// TestWebSocketServiceEnds: a service that sends and closes ends the
// client's stream with EOF after every byte, though the client never
// half-closed.
func TestWebSocketServiceEnds(t *testing.T) {
	payload := make([]byte, 2<<20+3)
	rand.Read(payload)
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/send", Service: service.Handler(func(c net.Conn) {
			c.Write(payload)
			c.Close()
		})},
	}})
	for _, base := range wsBases(gw) {
		t.Run(base.name, func(t *testing.T) {
			conn := mustDial(t, base.url+"/send", base.d, waitLimit)
			got, err := io.ReadAll(conn)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("ReadAll = %d bytes, %v; want the %d sent, then EOF", len(got), err, len(payload))
			}
		})
	}
}

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

// TestConnContractWebSocket runs x/net/nettest's net.Conn conformance
// tests on both ends of WebSocket tunnels, ws:// and wss://: the
// connection Dial returns, and the one a Listener's Accept returns.
func TestConnContractWebSocket(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "ws"
		if useTLS {
			name = "wss"
		}
		t.Run(name, func(t *testing.T) {
			l, url, d := listenerServer(t, useTLS)
			url = "ws" + strings.TrimPrefix(url, "http")
			t.Run("Dialed", func(t *testing.T) { nettest.TestConn(t, tunnelPipe(t, l, url, d, false)) })
			t.Run("Accepted", func(t *testing.T) { nettest.TestConn(t, tunnelPipe(t, l, url, d, true)) })
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
