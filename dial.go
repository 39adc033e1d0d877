package porthole

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/carrier/raw"
	"github.com/porthole/porthole/carrier/websocket"
	"github.com/porthole/porthole/internal/netutil"
	"github.com/porthole/porthole/internal/tlsutil"
)

// Dialer holds the options for Dial. The zero value, and a nil *Dialer,
// dial with the defaults each field names.
type Dialer struct {
	// TLSConfig configures TLS for https URLs: RootCAs for a private CA,
	// ServerName, client certificates, and InsecureSkipVerify, the explicit
	// switch that trusts any certificate (for development only). nil means
	// the system's roots and the URL's host name. It is cloned, not changed.
	TLSConfig *tls.Config
	// Fingerprint pins the gateway's certificate by the SHA-256 of its DER
	// form, in hex (colons allowed, as openssl prints it). When set, the
	// certificate is trusted if and only if it matches, whatever signed it.
	Fingerprint string
	// Header holds extra request headers for the handshake.
	Header http.Header
	// HandshakeTimeout bounds connecting, the TLS handshake and the
	// carrier's handshake. Zero means 30 seconds. A deadline on Dial's
	// context that comes sooner applies instead.
	HandshakeTimeout time.Duration
	// Carrier names the carrier: "raw", "websocket" or "poll". Empty means
	// websocket for ws:// and wss:// URLs and raw for http:// and https://.
	Carrier string
	// DialContext opens the TCP connection to the gateway; nil means a
	// net.Dialer's DialContext.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial opens a tunnel to the service at rawURL, an http://, https://, ws://
// or wss:// URL whose path names a route on a porthole gateway, as in
// "https://gateway.example/ssh". d may be nil for the defaults.
//
// ctx bounds the dial and handshake only; once Dial returns, the tunnel
// lives until it is closed. The returned net.Conn also implements
// CloseWrite() error, which tells the service the client will send no more
// while its replies keep arriving.
//
// A refusal by the gateway is returned as a *StatusError carrying the status
// and the gateway's reason; network and TLS failures are returned wrapped.
func Dial(ctx context.Context, rawURL string, d *Dialer) (net.Conn, error) {
	if d == nil {
		d = &Dialer{}
	}
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	name, err := d.carrierName(u)
	if err != nil {
		return nil, err
	}
	var conn net.Conn
	if name == poll.Name {
		conn, err = d.dialPoll(ctx, u)
	} else {
		conn, err = d.dial(ctx, u, handshakes[name])
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.Redacted(), err)
	}
	return conn, nil
}

// StatusError is a gateway's refusal to open a tunnel: an HTTP status and
// the gateway's one-line reason.
type StatusError = carrier.StatusError

// handshakeFunc is a carrier's client handshake over an established
// connection to the gateway.
type handshakeFunc func(ctx context.Context, conn net.Conn, u *url.URL, h http.Header) (net.Conn, error)

// ErrUnknownCarrier is returned for a Dialer.Carrier Dial does not know.
var ErrUnknownCarrier = errors.New(`porthole: unknown carrier: use "raw", "websocket" or "poll"`)

// handshakes are the client handshakes of the carriers that upgrade one
// connection.
var handshakes = map[string]handshakeFunc{
	"raw":       raw.Handshake,
	"websocket": websocket.Handshake,
}

func (d *Dialer) carrierName(u *url.URL) (string, error) {
	name := d.Carrier
	if name == "" {
		name = "raw"
		if u.Scheme == "ws" || u.Scheme == "wss" {
			name = "websocket"
		}
	}
	if _, ok := handshakes[name]; !ok && name != poll.Name {
		return "", fmt.Errorf("%w (got %q)", ErrUnknownCarrier, name)
	}
	return name, nil
}

func (d *Dialer) dial(ctx context.Context, u *url.URL, handshake handshakeFunc) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.handshakeTimeout())
	defer cancel()

	dialTCP := d.DialContext
	if dialTCP == nil {
		dialTCP = (&net.Dialer{}).DialContext
	}
	conn, err := dialTCP(ctx, "tcp", hostPort(u))
	if err != nil {
		return nil, err
	}
	if secure(u) {
		cfg, err := d.tlsConfig(u)
		if err != nil {
			conn.Close()
			return nil, err
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", u.Host, err)
		}
		conn = tc
	}
	tun, err := handshake(ctx, conn, u, d.Header)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return netutil.SafeDeadlines(tun), nil
}

// dialPoll opens a poll session; its requests go through an
// http.Transport of the Conn's own, configured as the Dialer says.
func (d *Dialer) dialPoll(ctx context.Context, u *url.URL) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.handshakeTimeout())
	defer cancel()
	tr := &http.Transport{
		DialContext:         d.DialContext,
		TLSHandshakeTimeout: d.handshakeTimeout(),
	}
	if secure(u) {
		cfg, err := d.tlsConfig(u)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	}
	pu := *u
	pu.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	if pu.Scheme == "" {
		pu.Scheme = u.Scheme
	}
	return poll.Dial(ctx, &pu, &poll.Options{Transport: tr, Header: d.Header, CloseTransport: true})
}

func (d *Dialer) handshakeTimeout() time.Duration {
	if d.HandshakeTimeout == 0 {
		return 30 * time.Second
	}
	return d.HandshakeTimeout
}

func (d *Dialer) tlsConfig(u *url.URL) (*tls.Config, error) {
	cfg := &tls.Config{}
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.NextProtos = []string{"http/1.1"}
	if d.Fingerprint != "" {
		pin, err := tlsutil.ParseFingerprint(d.Fingerprint)
		if err != nil {
			return nil, err
		}
		// The pin replaces chain verification: it names the one
		// certificate to trust.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = tlsutil.PinVerifier(pin)
	}
	return cfg, nil
}

// ErrFingerprint is returned when the gateway's certificate does not match
// Dialer.Fingerprint.
var ErrFingerprint = tlsutil.ErrFingerprint

// ErrBadURL is returned for a URL Dial cannot use.
var ErrBadURL = errors.New("porthole: URL must be http://, https://, ws:// or wss:// with a route path, as in http://127.0.0.1:8080/echo")

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return nil, fmt.Errorf("%w (got %q)", ErrBadURL, rawURL)
	}
	if u.Host == "" || u.Path == "" || u.Path == "/" {
		return nil, fmt.Errorf("%w (got %q)", ErrBadURL, rawURL)
	}
	return u, nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if secure(u) {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// secure reports whether u asks for TLS.
func secure(u *url.URL) bool { return u.Scheme == "https" || u.Scheme == "wss" }
