//go:build linux

package main

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testgw"
)

// TestServeAllowOrigin: -allow-origin lets a browser origin other than the
// gateway's own open WebSocket tunnels; any other origin still gets 403.
func TestServeAllowOrigin(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0", "-allow-origin", "https://app.example")
	handshake := func(origin string) *http.Response {
		req := strings.TrimSuffix(testgw.WSRequest(g.addr, "/echo"), "\r\n") + "Origin: " + origin + "\r\n\r\n"
		resp, _ := ask(t, g.addr, req)
		return resp
	}
	if r := handshake("https://app.example"); r.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("allowed origin got %s, want 101", r.Status)
	}
	if r := handshake("https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin got %s, want 403", r.Status)
	}
}

// TestServePingInterval: -ping-interval sets how often an idle WebSocket
// tunnel is pinged.
func TestServePingInterval(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0", "-ping-interval", "100ms")
	conn := dial(t, g.addr)
	start := time.Now()
	if _, err := io.WriteString(conn, testgw.WSRequest(g.addr, "/echo")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	ws := &testgw.WS{Conn: conn, R: br, Resp: resp}
	f, err := ws.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f.Op != testgw.OpPing {
		t.Fatalf("an idle tunnel got opcode %d, want a ping", f.Op)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("first ping after %v, want about 100ms", took)
	}
}
