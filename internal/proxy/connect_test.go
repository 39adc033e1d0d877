package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/proxy"
	"github.com/porthole/porthole/internal/testgw"
)

// scripted runs a stand-in proxy on loopback that reads one request, sends
// it on the returned channel, writes answer, and then echoes what follows.
func scripted(t *testing.T, answer string) (addr string, reqs <-chan *http.Request) {
	t.Helper()
	ch := make(chan *http.Request, 1)
	addr = testgw.TCPServer(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(testgw.WaitLimit))
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Errorf("stand-in proxy: %v", err)
			return
		}
		ch <- req
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
		io.Copy(c, br)
	})
	return addr, ch
}

// dialProxy opens a connection to addr, closed when the test ends.
func dialProxy(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testgw.WaitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connect dials the proxy at addr and calls Connect with proxyURL's user
// info and a deadline of testgw.WaitLimit.
func connect(t *testing.T, addr, userinfo, target string) (net.Conn, error) {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: addr}
	if userinfo != "" {
		user, pass, _ := strings.Cut(userinfo, ":")
		u.User = url.UserPassword(user, pass)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testgw.WaitLimit)
	defer cancel()
	return proxy.Connect(ctx, dialProxy(t, addr), u, target)
}

func TestConnectKeepsBytesAfterTheAnswer(t *testing.T) {
	addr, reqs := scripted(t, "HTTP/1.1 200 Connection established\r\n\r\nfirst")
	conn, err := connect(t, addr, "u:p", "gw.porthole.test:443")
	if err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	if req.Method != "CONNECT" || req.RequestURI != "gw.porthole.test:443" || req.Host != "gw.porthole.test:443" {
		t.Errorf("request %s %s, Host %s", req.Method, req.RequestURI, req.Host)
	}
	if got, want := req.Header.Get("Proxy-Authorization"), "Basic dTpw"; got != want {
		t.Errorf("Proxy-Authorization %q, want %q", got, want)
	}
	conn.SetDeadline(time.Now().Add(testgw.WaitLimit))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first bytes %q, %v; want those the proxy sent after its answer", buf, err)
	}
	if _, err := io.WriteString(conn, "echo"); err != nil {
		t.Fatal(err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); !ok {
		t.Errorf("%T has no CloseWrite", conn)
	} else if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(conn); err != nil || string(rest) != "echo" {
		t.Errorf("echo %q, %v", rest, err)
	}
}

func TestConnectPassesOverInformationalAnswers(t *testing.T) {
	addr, _ := scripted(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n")
	conn, err := connect(t, addr, "", "gw.porthole.test:443")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := conn.(*net.TCPConn); !ok {
		t.Errorf("got %T, want the *net.TCPConn itself when nothing followed the answer", conn)
	}
}

func TestConnectWithoutCredentialsSendsNone(t *testing.T) {
	addr, reqs := scripted(t, "HTTP/1.1 200 OK\r\n\r\n")
	if _, err := connect(t, addr, "", "gw.porthole.test:443"); err != nil {
		t.Fatal(err)
	}
	if h := (<-reqs).Header; h.Get("Proxy-Authorization") != "" || h.Get("User-Agent") != "porthole/1" {
		t.Errorf("header %v: want no Proxy-Authorization and porthole's User-Agent", h)
	}
}

func TestConnectRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, user, answer string
		code               int
		reason, hint       string
	}{
		{"407 without credentials", "", "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
			407, "Proxy Authentication Required", "http://user:pass@host:port"},
		{"407 with credentials", "u:secret", "HTTP/1.1 407 Unauthorized\r\nContent-Length: 0\r\n\r\n",
			407, "Unauthorized", "refused the user and password"},
		{"text body", "u:secret", "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n\r\n\nport 22 is not allowed\nmore\n",
			403, "port 22 is not allowed", "many allow CONNECT only to port 443"},
		{"body shorter than its length", "", "HTTP/1.1 403 Forbidden\r\nContent-Length: 1000\r\n\r\nnot yet\n",
			403, "not yet", "many allow CONNECT only to port 443"},
		{"squid", "", "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html;charset=utf-8\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nContent-Length: 34\r\n\r\n<html><title>ERROR</title></html>\n",
			403, "ERROR [ERR_ACCESS_DENIED]", "many allow CONNECT only to port 443"},
		{"title with the code", "", "HTTP/1.0 403 Access violation\r\nContent-Type: text/html\r\nContent-Length: 41\r\n\r\n<html><title>403 Access violation</title>",
			403, "Access violation", "many allow CONNECT only to port 443"},
		{"html body that never ends", "", "HTTP/1.0 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n<html><head><TITLE>Cannot\n  connect &amp; so on</TITLE></head></html>",
			502, "Cannot connect & so on", "could not reach the gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := scripted(t, tc.answer)
			_, err := connect(t, addr, tc.user, "gw.porthole.test:22")
			var pe *proxy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *proxy.Error", err)
			}
			if pe.Code != tc.code || pe.Reason != tc.reason || pe.Proxy != addr || pe.SentCredentials != (tc.user != "") {
				t.Errorf("%+v, want code %d, reason %q, proxy %s", pe, tc.code, tc.reason, addr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "proxy "+addr+" answered ") || !strings.Contains(msg, tc.hint) {
				t.Errorf("message %q, want the proxy's address and %q", msg, tc.hint)
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("message %q shows the password", msg)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  proxy.Error
		want string
	}{
		{proxy.Error{Proxy: "127.0.0.1:3128", Code: 407, Reason: "Proxy Authentication Required"},
			"proxy 127.0.0.1:3128 answered 407 Proxy Authentication Required (give credentials in the proxy URL as http://user:pass@host:port)"},
		{proxy.Error{Proxy: "p:1", Code: 418, Reason: "short and stout"},
			"proxy p:1 answered 418 I'm a teapot: short and stout"},
		{proxy.Error{Proxy: "p:1", Code: 599},
			"proxy p:1 answered 599"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

func TestConnectContextBoundsTheExchange(t *testing.T) {
	// A proxy that reads the request and never answers.
	addr := testgw.TCPServer(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(io.Discard, c)
	})
	conn := dialProxy(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := proxy.Connect(ctx, conn, &url.URL{Scheme: "http", Host: addr}, "gw.porthole.test:443")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want one wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > testgw.WaitLimit/2 {
		t.Errorf("Connect returned after %v", d)
	}
}

func TestConnectRefusesAnEndlessHead(t *testing.T) {
	addr, _ := scripted(t, "HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 70<<10)+"\r\n\r\n")
	if _, err := connect(t, addr, "", "gw.porthole.test:443"); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("error %v, want one about the head's length", err)
	}
}

func TestConnectRejectsOtherProxies(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	u := &url.URL{Scheme: "socks5", Host: "s.test:1080", User: url.UserPassword("u", "secret")}
	_, err := proxy.Connect(t.Context(), a, u, "gw.porthole.test:443")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v, want one without the password", err)
	}
}
