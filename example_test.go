package porthole_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// Dial a gateway's echo route, send a line, half-close, and read the echo.
func ExampleDial() {
	// A gateway with the built-in echo at /echo, on a port the kernel picks.
	gw, err := gateway.New(&gateway.Options{
		Routes: []gateway.Route{{Path: "/echo", Service: service.Echo{}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go gw.Serve(ln)
	defer gw.Shutdown(context.Background())

	// The context bounds the handshake only, never the tunnel.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := porthole.Dial(ctx, "http://"+ln.Addr().String()+"/echo", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	io.WriteString(conn, "hello through porthole\n")
	conn.(interface{ CloseWrite() error }).CloseWrite() // no more to send
	echo, err := io.ReadAll(conn)                       // everything the echo sends, until its EOF
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(echo))
	// Output: hello through porthole
}

// A Go server accepts tunnels with a Listener mounted on its mux, beside its
// other handlers, and a client dials one. The two ends then run TLS inside
// the tunnel, as a protocol of their own would.
func ExampleListener() {
	tunnels := porthole.NewListener(nil)
	mux := http.NewServeMux()
	mux.Handle("/tunnel", tunnels)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	defer tunnels.Close()

	cert, roots := exampleCert("tunnel.example")
	done := make(chan struct{})
	go func() { // the server: TLS over each accepted tunnel
		defer close(done)
		conn, err := tunnels.Accept()
		if err != nil {
			log.Fatal(err)
		}
		tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
		defer tc.Close()
		line := make([]byte, 64)
		n, err := tc.Read(line)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(tc, "server got %q over %s", line[:n], tls.VersionName(tc.ConnectionState().Version))
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := porthole.Dial(ctx, "http://"+ln.Addr().String()+"/tunnel", nil)
	if err != nil {
		log.Fatal(err)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: "tunnel.example"})
	defer tc.Close()
	io.WriteString(tc, "hello")
	reply, err := io.ReadAll(tc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	<-done
	// Output: server got "hello" over TLS 1.3
}

// exampleCert makes a self-signed certificate for host and a pool that
// trusts it.
func exampleCert(host string) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}
