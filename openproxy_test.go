package porthole_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// TestNeverAnOpenProxy tries to reach a host and port no route names
// through every carrier and every trick a request can hold: absolute
// URIs, Host headers, CONNECT, connect-tcp's well-known paths, dot
// segments and escapes in the path, forwarding headers. The forbidden
// server must never see a connection; every attempt is refused or reaches
// the route's own service.
func TestNeverAnOpenProxy(t *testing.T) {
	var reached atomic.Int32
	forbidden := testgw.TCPServer(t, func(c net.Conn) {
		reached.Add(1)
		c.Close()
	})
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/echo", Service: service.Echo{}, Bare: true},
		{Path: "/svc", Service: &service.TCP{Addr: testgw.EchoServer(t)}},
	}})
	host, port, _ := net.SplitHostPort(forbidden)
	up := "Connection: Upgrade\r\nUpgrade: porthole\r\nPorthole-Version: 1\r\n"
	ws := "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	poll := "Porthole-Carrier: poll\r\nContent-Length: 0\r\n"
	targets := []string{
		"http://" + forbidden + "/",
		"http://" + forbidden + "/echo",
		"/" + forbidden,
		"//" + forbidden + "/",
		"/svc/../" + forbidden,
		"/svc/%2e%2e/" + forbidden,
		"/svc%2F..%2F" + forbidden,
		"/.well-known/masque/tcp/" + host + "/" + port + "/",
		"/svc/" + host + "/" + port,
		"/svc?target=" + forbidden,
	}
	headers := []string{
		"Host: " + forbidden + "\r\n",
		"Host: x\r\nX-Forwarded-Host: " + forbidden + "\r\nForwarded: host=" + forbidden + "\r\nPorthole-Target: " + forbidden + "\r\n",
	}
	var heads []string
	for _, target := range targets {
		for _, h := range headers {
			for _, c := range []string{up, ws, poll} {
				method := "GET"
				if c == poll {
					method = "POST"
				}
				heads = append(heads, method+" "+target+" HTTP/1.1\r\n"+h+c+"\r\n")
			}
		}
		heads = append(heads, "GET "+target+" HTTP/1.0\r\n\r\n") // the bare form
	}
	heads = append(heads,
		"CONNECT "+forbidden+" HTTP/1.1\r\nHost: "+forbidden+"\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: connect-tcp\r\n:authority: "+forbidden+"\r\n\r\n",
	)
	for _, head := range heads {
		conn := gw.Connect(t, false)
		conn.SetDeadline(time.Now().Add(waitLimit))
		// A line after the head: a tunnel that opened reaches the route's
		// own service and echoes it (the bare form answers nothing else);
		// a refusal answers with a status line.
		if _, err := conn.Write([]byte(head + "hello\n")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		first, err := br.Peek(5)
		switch {
		case err == io.EOF:
			// Closed without an answer: gorilla's refusal of bytes sent
			// before the WebSocket handshake completed.
		case err != nil:
			t.Fatalf("no answer to %q: %v", head, err)
		case string(first) == "hello":
		case string(first) == "HTTP/":
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("answer to %q: %v", head, err)
			}
			resp.Body.Close()
		default:
			t.Fatalf("answer to %q begins %q", head, first)
		}
		conn.Close()
	}
	for _, c := range carriers {
		for _, target := range targets[2:] {
			if !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") {
				continue
			}
			if conn, err := porthole.Dial(dialContext(t), gw.URL+target, &porthole.Dialer{Carrier: c, Header: http.Header{"X-Forwarded-Host": {forbidden}}}); err == nil {
				conn.Close()
			}
		}
	}
	// The poll sessions the hand-made requests opened would hold the
	// gateway's drain until they expire: close them now.
	gw.Stop(t, 100*time.Millisecond)
	if n := reached.Load(); n != 0 {
		t.Fatalf("the forbidden server got %d connections through the gateway: an open proxy", n)
	}
	t.Logf("%d hand-made requests and %d dials, none reached %s", len(heads), 3*(len(targets)-2), forbidden)
}
