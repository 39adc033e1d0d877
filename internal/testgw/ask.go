package testgw

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Ask writes a request head (and anything after it) on conn in one write,
// and reads the answer and its whole body: a client that sends exactly
// the bytes a test chooses.
func Ask(t testing.TB, conn net.Conn, head string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", head, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the body of the answer to %q: %v", head, err)
	}
	return resp, string(body)
}

// HTTPServer starts h on a loopback httptest server, over TLS or not, and
// returns it with a TLS config that trusts its certificate (nil without
// TLS). The server closes when the test ends.
func HTTPServer(t testing.TB, h http.Handler, useTLS bool) (*httptest.Server, *tls.Config) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	var cfg *tls.Config
	if useTLS {
		srv.StartTLS()
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		cfg = &tls.Config{RootCAs: roots}
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, cfg
}
