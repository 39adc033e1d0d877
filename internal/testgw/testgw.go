// Package testgw starts real gateways and backends on loopback for tests
// and benchmarks. Nothing in it is faked: every server listens on a real
// socket on 127.0.0.1 with a port the kernel picks.
package testgw

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/tlsutil"
)

// Gateway is a running gateway with an HTTP and an HTTPS listener.
type Gateway struct {
	*gateway.Gateway
	URL      string          // http://127.0.0.1:PORT
	TLSURL   string          // https://127.0.0.1:PORT
	Cert     tls.Certificate // the HTTPS listener's self-signed certificate
	Pin      string          // its SHA-256 fingerprint, hex
	served   chan error
	shutdown bool
}

// Start runs a gateway with opts on two loopback listeners (plain and TLS)
// and shuts it down, with a deadline, when the test ends. A nil
// opts.Logger logs only warnings and errors, to the test's log.
func Start(t testing.TB, opts gateway.Options) *Gateway {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	gw, err := gateway.New(&opts)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tlsutil.SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, tln := Listen(t), Listen(t)
	g := &Gateway{
		Gateway: gw,
		URL:     "http://" + ln.Addr().String(),
		TLSURL:  "https://" + tln.Addr().String(),
		Cert:    cert,
		Pin:     tlsutil.Fingerprint(cert.Leaf.Raw),
		served:  make(chan error, 2),
	}
	go func() { g.served <- gw.Serve(ln) }()
	go func() { g.served <- gw.ServeTLS(tln, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	t.Cleanup(func() {
		if !g.shutdown {
			g.Stop(t, 10*time.Second)
		}
	})
	return g
}

// Stop shuts the gateway down within timeout and checks that both
// listeners' Serve returned http.ErrServerClosed.
func (g *Gateway) Stop(t testing.TB, timeout time.Duration) error {
	t.Helper()
	g.shutdown = true
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := g.Shutdown(ctx)
	for range 2 {
		if serr := <-g.served; !errors.Is(serr, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", serr)
		}
	}
	return err
}

// Listen returns a TCP listener on a free loopback port, closed when the
// test ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TCPServer runs handle for each connection accepted on a loopback port,
// each in its own goroutine, until the test ends, and returns the address.
// handle owns the connection and closes it.
func TCPServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln := Listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// EchoServer runs a plain TCP echo server on loopback (a backend for
// tcp:// routes) that half-closes after echoing everything, and returns
// its address.
func EchoServer(t testing.TB) string {
	t.Helper()
	return TCPServer(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// DeadAddr returns a loopback address that refuses connections: a socket
// bound to it that never listens holds the port until the test ends, so
// nothing else can start listening there.
func DeadAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
