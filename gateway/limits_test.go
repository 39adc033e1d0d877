package gateway_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/porthole/porthole/gateway"
)

// TestHeaderTooLarge: a request head over MaxHeaderBytes is refused with
// 431 before any tunnel opens, and one under it gets its tunnel.
func TestHeaderTooLarge(t *testing.T) {
	const max = 4 << 10
	gw := start(t, gateway.Options{MaxHeaderBytes: max})
	forBoth(t, func(t *testing.T, useTLS bool) {
		// net/http allows 4 KiB of slack over MaxHeaderBytes.
		big := connect(t, gw, useTLS)
		write(t, big, "GET /echo HTTP/1.1\r\nHost: gateway.test\r\nConnection: Upgrade\r\nUpgrade: porthole\r\nX-Big: "+strings.Repeat("a", 3*max)+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(big), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("a %d-byte head got %s, want 431", 3*max, resp.Status)
		}

		ok := connect(t, gw, useTLS)
		write(t, ok, "GET /echo HTTP/1.1\r\nHost: gateway.test\r\nConnection: Upgrade\r\nUpgrade: porthole\r\nX-Fits: "+strings.Repeat("a", max/2)+"\r\n\r\nhi")
		br := bufio.NewReader(ok)
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("a head under the cap got %s, want 101", resp.Status)
		}
		readExactly(t, br, "hi")
	})
}
