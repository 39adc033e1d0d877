package gateway_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
)

// TestBareForm sends the bare request line and payload in one write: the
// payload must come back first, with no HTTP answer before it.
func TestBareForm(t *testing.T) {
	gw := start(t, gateway.Options{})
	forBoth(t, func(t *testing.T, useTLS bool) {
		conn := connect(t, gw, useTLS)
		write(t, conn, "GET /echo HTTP/1.0\r\n\r\nsent with the request line")
		readExactly(t, conn, "sent with the request line")
		write(t, conn, "and after")
		readExactly(t, conn, "and after")
	})
}

// TestBareFormOff sends the bare form to a route that does not allow it.
func TestBareFormOff(t *testing.T) {
	gw := start(t, gateway.Options{})
	forBoth(t, func(t *testing.T, useTLS bool) {
		conn := connect(t, gw, useTLS)
		resp, body := testgw.Ask(t, conn, "GET /nobare HTTP/1.0\r\n\r\n")
		if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), "bare form is off") {
			t.Fatalf("answer %s %q, want 426 saying the bare form is off", resp.Status, body)
		}
		if up := resp.Header.Get("Upgrade"); up != "porthole" {
			t.Errorf("Upgrade = %q, want porthole", up)
		}
	})
}

// TestUpgradeTokens upgrades with each token the raw carrier accepts,
// sending payload in the same write as the request head: the answer is a
// 101 naming the client's token, and the payload is echoed right after it.
func TestUpgradeTokens(t *testing.T) {
	gw := start(t, gateway.Options{})
	for _, token := range []string{"porthole", "connect-tcp"} {
		t.Run(token, func(t *testing.T) {
			forBoth(t, func(t *testing.T, useTLS bool) {
				conn := connect(t, gw, useTLS)
				write(t, conn, "GET /nobare HTTP/1.1\r\nHost: gateway.test\r\nConnection: Upgrade\r\nUpgrade: "+token+"\r\n\r\nearly bytes")
				br := bufio.NewReader(conn)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != token {
					t.Fatalf("answer %s with Upgrade %q, want 101 with Upgrade %q", resp.Status, resp.Header.Get("Upgrade"), token)
				}
				readExactly(t, br, "early bytes")
				write(t, conn, "later bytes")
				readExactly(t, br, "later bytes")
			})
		})
	}
}
