package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/internal/backoff"
	"github.com/porthole/porthole/internal/netutil"
	"github.com/porthole/porthole/internal/proxy"
	"github.com/porthole/porthole/internal/relay"
)

func connect(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, log *slog.Logger, stderr io.Writer) error {
	fs := flag.NewFlagSet("porthole connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      = fs.String("listen", "", "listen on this local `address` and open a tunnel for each connection, instead of using stdin and stdout")
		reconnect   = fs.Bool("reconnect", false, "while the gateway is unreachable, keep retrying with capped exponential backoff")
		insecure    = fs.Bool("insecure", false, "trust any TLS certificate (development only)")
		fingerprint = fs.String("fingerprint", "", "trust only the TLS certificate with this SHA-256 `fingerprint` (hex, as porthole serve logs it)")
		caFile      = fs.String("ca", "", "trust TLS certificates signed by the CA in this PEM `file`")
		timeout     = fs.Duration("timeout", 30*time.Second, "bound on connecting and the handshake")
		carrierName = fs.String("carrier", "", "`auto`, raw, websocket or poll; default websocket for ws:// and wss:// URLs, auto otherwise (raw, then websocket, then poll: the first that works)")
		proxyURL    = fs.String("proxy", "", "reach the gateway through the HTTP proxy at this `URL` (http://[user:pass@]host:port); default from HTTPS_PROXY, HTTP_PROXY and NO_PROXY")
		token       = fs.String("token", "", "bearer `token` for routes that need one (visible in ps: prefer -token-file or PORTHOLE_TOKEN)")
		tokenFile   = fs.String("token-file", "", "read the bearer token from this `file`")
		certFile    = fs.String("cert", "", "client certificate `file` (PEM), for routes that verify them; with -key")
		keyFile     = fs.String("key", "", "client certificate's private key `file` (PEM)")
		headers     listFlag
	)
	fs.Var(&headers, "H", "extra request header `'Name: value'`, repeatable")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: porthole connect [flags] URL\n\nOpens a tunnel to the service at URL (http://, https://, ws:// or wss://). Without -listen it\ncarries stdin and stdout, as an ssh ProxyCommand does.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("connect takes one URL, as in http://127.0.0.1:8080/echo")
	}
	url := fs.Arg(0)
	d := &porthole.Dialer{Fingerprint: *fingerprint, HandshakeTimeout: *timeout, Header: make(http.Header), Carrier: *carrierName, Logger: log}
	d.Proxy = porthole.ProxyFromEnvironment()
	if *proxyURL != "" {
		px, err := proxy.Parse(*proxyURL)
		if err != nil {
			return fmt.Errorf("-proxy: %w", err)
		}
		d.Proxy = proxy.Fixed(px)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("-H %q: want 'Name: value'", h)
		}
		d.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	var err error
	if d.Token, err = bearerToken(*token, *tokenFile); err != nil {
		return err
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("-cert and -key go together")
	}
	if *insecure || *caFile != "" || *certFile != "" {
		d.TLSConfig = &tls.Config{InsecureSkipVerify: *insecure}
		if *certFile != "" {
			cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				return fmt.Errorf("-cert/-key: %w", err)
			}
			d.TLSConfig.Certificates = []tls.Certificate{cert}
		}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return fmt.Errorf("-ca: %w", err)
			}
			d.TLSConfig.RootCAs = x509.NewCertPool()
			if !d.TLSConfig.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("-ca %s: no PEM certificate in it", *caFile)
			}
		}
	}
	c := &connector{url: url, dialer: d, reconnect: *reconnect, log: log}
	if *listen != "" {
		return c.listen(ctx, *listen)
	}
	return c.stdio(ctx, stdin, stdout)
}

// bearerToken picks the token from -token, -token-file or PORTHOLE_TOKEN,
// in that order; at most one of the flags may be given.
func bearerToken(flagValue, file string) (string, error) {
	switch {
	case flagValue != "" && file != "":
		return "", errors.New("-token and -token-file: give one")
	case flagValue != "":
		return flagValue, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("-token-file: %w", err)
		}
		token := strings.TrimSpace(string(b))
		if token == "" {
			return "", fmt.Errorf("-token-file %s is empty", file)
		}
		return token, nil
	}
	return os.Getenv("PORTHOLE_TOKEN"), nil
}

// connector opens tunnels to one URL for the connect command.
type connector struct {
	url       string
	dialer    *porthole.Dialer
	reconnect bool
	log       *slog.Logger
}

// dial opens a tunnel; with reconnect it retries while the failure may pass
// (the network, or a 5xx from the gateway), until ctx ends.
func (c *connector) dial(ctx context.Context) (net.Conn, error) {
	b := backoff.Backoff{Base: 250 * time.Millisecond, Max: 10 * time.Second}
	for attempt := 1; ; attempt++ {
		conn, err := porthole.Dial(ctx, c.url, c.dialer)
		if err == nil {
			return conn, nil
		}
		err = explain(err)
		if !c.reconnect || !transient(err) || ctx.Err() != nil {
			return nil, err
		}
		wait := b.Next()
		c.log.Warn("gateway unreachable; retrying", "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, err
		}
	}
}

// stdio carries stdin to the tunnel and the tunnel to stdout. It returns
// when the service's side ends, having half-closed the tunnel at stdin's EOF.
func (c *connector) stdio(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		if _, err := io.Copy(conn, stdin); err == nil {
			netutil.CloseWrite(conn)
		} else {
			conn.Close()
		}
	}()
	if _, err := io.Copy(stdout, conn); err != nil && ctx.Err() == nil {
		return fmt.Errorf("tunnel to %s broke: %w", c.url, err)
	}
	return nil
}

// listen accepts local connections and carries each through its own tunnel.
func (c *connector) listen(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	c.log.Info("forwarding", "listen", ln.Addr().String(), "to", c.url)
	for {
		local, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go c.forward(ctx, local)
	}
}

func (c *connector) forward(ctx context.Context, local net.Conn) {
	conn, err := c.dial(ctx)
	if err != nil {
		c.log.Error("tunnel refused", "client", local.RemoteAddr().String(), "err", err)
		local.Close()
		return
	}
	start := time.Now()
	st, err := relay.Pipe(local, conn)
	attrs := []any{"client", local.RemoteAddr().String(), "bytes_out", st.AToB, "bytes_in", st.BToA, "duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	c.log.Info("tunnel closed", attrs...)
}

// transient reports whether a failed dial may work later: a network error
// or the gateway's 5xx, but not a refusal (4xx), a bad URL or a
// certificate the client does not trust.
func transient(err error) bool {
	var se *porthole.StatusError
	if errors.As(err, &se) {
		return se.Code >= 500 || se.Code == http.StatusTooManyRequests
	}
	if errors.Is(err, porthole.ErrBadURL) || errors.Is(err, porthole.ErrUnknownCarrier) || isCertError(err) {
		return false
	}
	return true
}

func isCertError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.Is(err, porthole.ErrFingerprint)
}

// explain adds what to do to errors whose fix is a flag.
func explain(err error) error {
	if isCertError(err) {
		return fmt.Errorf("%w\n(trust the gateway with -ca FILE or -fingerprint SHA256 as porthole serve logs it; -insecure for development only)", err)
	}
	return err
}
