package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/intermediary"
	"github.com/porthole/porthole/internal/proxy"
	"github.com/porthole/porthole/internal/testgw"
)

// refusal calls Connect through the proxy at addr and returns its
// *proxy.Error, failing the test when there is none.
func refusal(t *testing.T, addr, userinfo, target string) *proxy.Error {
	t.Helper()
	_, err := connect(t, addr, userinfo, target)
	var pe *proxy.Error
	if !errors.As(err, &pe) {
		t.Fatalf("CONNECT %s: error %v, want a *proxy.Error", target, err)
	}
	t.Logf("CONNECT %s: %v", target, err)
	return pe
}

// checkEcho sends a line through conn to an echo server and checks it
// comes back whole. It does not half-close: Squid and Tinyproxy both end
// a tunnel at the client's FIN, losing the replies still on their way.
func checkEcho(t *testing.T, conn net.Conn) {
	t.Helper()
	const line = "through the proxy\n"
	conn.SetDeadline(time.Now().Add(testgw.WaitLimit))
	if _, err := io.WriteString(conn, line); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(line))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != line {
		t.Errorf("echo %q, %v; want %q", got, err, line)
	}
}

func TestTinyproxy(t *testing.T) {
	addr := intermediary.Tinyproxy(t, intermediary.TinyproxyOptions{BasicAuth: "porthole:s3cret", ConnectAnyPort: true})
	srv, tlsConfig := testgw.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over TLS")
	}), true)
	target := srv.Listener.Addr().String()

	t.Run("no credentials", func(t *testing.T) {
		pe := refusal(t, addr, "", target)
		if pe.Code != http.StatusProxyAuthRequired || !strings.Contains(pe.Error(), "http://user:pass@host:port") {
			t.Errorf("%v: want 407 and how to give credentials", pe)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		// Tinyproxy answers wrong credentials 401, not 407.
		pe := refusal(t, addr, "porthole:wrong", target)
		if pe.Code != http.StatusUnauthorized || !strings.Contains(pe.Error(), "refused the user and password") || strings.Contains(pe.Error(), "wrong") {
			t.Errorf("%v: want 401, saying the credentials were refused, without the password", pe)
		}
	})
	t.Run("credentials", func(t *testing.T) {
		conn, err := connect(t, addr, "porthole:s3cret", target)
		if err != nil {
			t.Fatal(err)
		}
		cfg := tlsConfig.Clone()
		cfg.ServerName = "127.0.0.1"
		tc := tls.Client(conn, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), testgw.WaitLimit)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			t.Fatalf("TLS handshake through the tunnel: %v", err)
		}
		resp, body := testgw.Ask(t, tc, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		if resp.StatusCode != http.StatusOK || body != "hello over TLS" {
			t.Errorf("answer %s %q", resp.Status, body)
		}
	})
}

func TestTinyproxyRefusesOtherPorts(t *testing.T) {
	addr := intermediary.Tinyproxy(t, intermediary.TinyproxyOptions{})
	if pe := refusal(t, addr, "", testgw.EchoServer(t)); pe.Code != http.StatusForbidden {
		t.Errorf("%v: want 403", pe)
	}
}

func TestSquidRefusesOtherPorts(t *testing.T) {
	addr := intermediary.Squid(t, intermediary.SquidOptions{})
	pe := refusal(t, addr, "", testgw.EchoServer(t))
	if pe.Code != http.StatusForbidden || !strings.Contains(pe.Reason, "ERR_ACCESS_DENIED") || pe.Proxy != addr {
		t.Errorf("%+v: want 403 from %s with squid's ERR_ACCESS_DENIED", pe, addr)
	}
}

// TestSquidFromEnvironment takes a wss:// gateway URL through the proxy
// HTTPS_PROXY names, under a host name only the proxy resolves, as Dial
// will.
func TestSquidFromEnvironment(t *testing.T) {
	_, port, _ := net.SplitHostPort(testgw.EchoServer(t))
	addr := intermediary.Squid(t, intermediary.SquidOptions{
		ConnectAnyPort: true,
		Hosts:          map[string]string{"gw.porthole.test": "127.0.0.1"},
	})
	setEnv(t, "HTTPS_PROXY="+addr, "NO_PROXY=example.test")
	gw := &url.URL{Scheme: "wss", Host: net.JoinHostPort("gw.porthole.test", port), Path: "/echo"}
	p, err := proxy.FromEnvironment()(gw)
	if err != nil || p == nil {
		t.Fatalf("proxy for %s: %v, %v", gw, p, err)
	}
	conn, err := connect(t, proxy.Addr(p), "", gw.Host)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, conn)
}
