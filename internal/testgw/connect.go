package testgw

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// WaitLimit bounds every wait of the helpers here, and the deadline
// Connect sets.
const WaitLimit = 10 * time.Second

// Connect opens a plain socket to the gateway, or a TLS one that trusts
// its certificate, closed when the test ends, with reads and writes
// bounded by WaitLimit.
func (g *Gateway) Connect(t testing.TB, useTLS bool) net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: WaitLimit}
	var conn net.Conn
	var err error
	if useTLS {
		roots := x509.NewCertPool()
		roots.AddCert(g.Cert.Leaf)
		conn, err = tls.DialWithDialer(d, "tcp", g.Addr(true), &tls.Config{RootCAs: roots})
	} else {
		conn, err = d.Dial("tcp", g.Addr(false))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(WaitLimit))
	return conn
}

// Addr returns the host:port of the gateway's plain or TLS listener.
func (g *Gateway) Addr(useTLS bool) string {
	if useTLS {
		return strings.TrimPrefix(g.TLSURL, "https://")
	}
	return strings.TrimPrefix(g.URL, "http://")
}

// IsReset reports a connection the other end reset: a read or write fails
// with ECONNRESET or EPIPE, and a half-close (shutdown(2)) of a socket
// the reset has already ended fails with ENOTCONN.
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOTCONN)
}
