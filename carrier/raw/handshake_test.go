package raw_test

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

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/raw"
	"github.com/porthole/porthole/internal/testgw"
)

const waitLimit = 10 * time.Second

// fakeGateway accepts one connection on a real loopback socket, reads the
// request head and hands both to answer, which plays the gateway. It
// returns a client connection to it; the request arrives on reqs.
func fakeGateway(t *testing.T, answer func(c net.Conn, r *http.Request)) (net.Conn, <-chan *http.Request) {
	t.Helper()
	ln := testgw.Listen(t)
	reqs := make(chan *http.Request, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitLimit))
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		reqs <- r
		answer(c, r)
	}()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	conn.SetDeadline(time.Now().Add(waitLimit))
	return conn, reqs
}

func handshake(t *testing.T, ctx context.Context, conn net.Conn, h http.Header) (net.Conn, error) {
	u, _ := url.Parse("http://gateway.test:8080/svc?x=1")
	tun, _, err := raw.Handshake(ctx, conn, u, h)
	return tun, err
}

// TestHandshakeRequest checks the request Handshake sends, and that bytes
// the gateway sent in the same write as its 101 are read first.
func TestHandshakeRequest(t *testing.T) {
	conn, reqs := fakeGateway(t, func(c net.Conn, _ *http.Request) {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\nearly")
		io.Copy(c, c)
	})
	tun, err := handshake(t, t.Context(), conn, http.Header{"Authorization": {"Bearer x"}})
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	r := <-reqs
	for name, want := range map[string]string{
		"Connection": "Upgrade", "Upgrade": "porthole", "Porthole-Version": "1", "Authorization": "Bearer x",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("request %s = %q, want %q", name, got, want)
		}
	}
	if r.Method != "GET" || r.RequestURI != "/svc?x=1" || r.Host != "gateway.test:8080" || r.Proto != "HTTP/1.1" {
		t.Errorf("request line %s %s %s, Host %s; want GET /svc?x=1 HTTP/1.1, Host gateway.test:8080", r.Method, r.RequestURI, r.Proto, r.Host)
	}
	got := make([]byte, len("early"))
	if _, err := io.ReadFull(tun, got); err != nil || string(got) != "early" {
		t.Fatalf("first read %q, %v; want the bytes sent with the 101", got, err)
	}
	io.WriteString(tun, "echoed")
	got = make([]byte, len("echoed"))
	if _, err := io.ReadFull(tun, got); err != nil || string(got) != "echoed" {
		t.Fatalf("read %q, %v; want the echo", got, err)
	}
	if _, ok := tun.(interface{ CloseWrite() error }); !ok {
		t.Errorf("the tunnel %T has no CloseWrite", tun)
	}
}

// TestHandshakeOutlivesContext checks that the context bounds the
// handshake only: once Handshake returned, the tunnel works after the
// context is done.
func TestHandshakeOutlivesContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	conn, _ := fakeGateway(t, func(c net.Conn, _ *http.Request) {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\n")
		<-ctx.Done()
		io.WriteString(c, "after the context")
	})
	tun, err := handshake(t, ctx, conn, nil)
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	cancel()
	tun.SetDeadline(time.Time{}) // the test's own limit goes, to see Handshake left none
	defer tun.SetDeadline(time.Now().Add(waitLimit))
	got := make([]byte, len("after the context"))
	if _, err := io.ReadFull(tun, got); err != nil {
		t.Fatalf("reading after the context ended: %v", err)
	}
}

func TestHandshakeFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		check  func(t *testing.T, err error)
	}{
		{"Refused", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 24\r\n\r\nat the cap\nsecond line\n", func(t *testing.T, err error) {
			var se *carrier.StatusError
			if !errors.As(err, &se) || se.Code != 503 || se.Reason != "at the cap" {
				t.Fatalf("error %v, want a 503 StatusError with the body's first line", err)
			}
		}},
		{"OKNotSwitching", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\npage\n", func(t *testing.T, err error) {
			var se *carrier.StatusError
			if !errors.As(err, &se) || se.Code != 200 {
				t.Fatalf("error %v, want a 200 StatusError", err)
			}
		}},
		{"WrongToken", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), `"websocket"`) {
				t.Fatalf("error %v, want one naming the wrong Upgrade token", err)
			}
		}},
		{"NotHTTP", "SSH-2.0-OpenSSH_9.6\r\n", func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "reading the gateway's answer") {
				t.Fatalf("error %v, want one about the gateway's answer", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, _ := fakeGateway(t, func(c net.Conn, _ *http.Request) { io.WriteString(c, tc.answer) })
			tun, err := handshake(t, t.Context(), conn, nil)
			if err == nil {
				tun.Close()
			}
			tc.check(t, err)
		})
	}
}

// TestHandshakeDeadline checks that a gateway that never answers is given
// up at the context's deadline, with the context's error.
func TestHandshakeDeadline(t *testing.T) {
	const limit = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	conn, _ := fakeGateway(t, func(c net.Conn, _ *http.Request) { io.Copy(io.Discard, c) })
	start := time.Now()
	_, err := handshake(t, ctx, conn, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handshake with a silent gateway: %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > limit+2*time.Second {
		t.Fatalf("Handshake gave up after %v, want about %v", elapsed, limit)
	}
}
