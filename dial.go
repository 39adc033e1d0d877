package porthole

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/carrier/raw"
	"github.com/porthole/porthole/carrier/websocket"
	"github.com/porthole/porthole/internal/netutil"
	"github.com/porthole/porthole/internal/proxy"
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
	// Token is the bearer token for routes that need one, sent as
	// "Authorization: Bearer TOKEN" on every carrier. A client
	// certificate for routes that verify them goes in
	// TLSConfig.Certificates.
	Token string
	// HandshakeTimeout bounds connecting, the TLS handshake and the
	// carrier's handshake. Zero means 30 seconds. A deadline on Dial's
	// context that comes sooner applies instead.
	HandshakeTimeout time.Duration
	// Carrier names the carrier: "auto", "raw", "websocket" or "poll".
	// Empty means websocket for ws:// and wss:// URLs and auto for http://
	// and https://: raw, then websocket, then poll, as the section on
	// automatic choice in the package doc tells.
	Carrier string
	// Proxy picks the HTTP proxy to reach the gateway at a URL through:
	// an http:// or https:// proxy URL, with user:password for Basic
	// auth, or nil for none. nil Proxy means no proxy;
	// ProxyFromEnvironment reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
	Proxy func(gateway *url.URL) (*url.URL, error)
	// Logger receives why each carrier that auto tried failed, at Info;
	// nil means nowhere.
	Logger *slog.Logger
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
	if d.Token != "" {
		dd := *d
		dd.Header = d.Header.Clone()
		if dd.Header == nil {
			dd.Header = make(http.Header)
		}
		dd.Header.Set("Authorization", "Bearer "+d.Token)
		d = &dd
	}
	var px *url.URL
	if d.Proxy != nil {
		if px, err = d.Proxy(u); err != nil {
			return nil, fmt.Errorf("choosing the proxy for %s: %w", u.Redacted(), err)
		}
	}
	var conn net.Conn
	if name == Auto {
		conn, err = d.dialAuto(ctx, u, px)
	} else {
		conn, err = d.dialCarrier(ctx, u, name, px)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.Redacted(), err)
	}
	return conn, nil
}

// ProxyFromEnvironment returns, for Dialer.Proxy, the proxy choice that
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case forms) make,
// read at the call. As in Go's net/http, a gateway named localhost or by a
// loopback address is never proxied.
func ProxyFromEnvironment() func(gateway *url.URL) (*url.URL, error) {
	return proxy.FromEnvironment()
}

// StatusError is a gateway's refusal to open a tunnel: an HTTP status and
// the gateway's one-line reason.
type StatusError = carrier.StatusError

// handshakeFunc is a carrier's client handshake over an established
// connection to the gateway; it returns the tunnel and the 101's header.
type handshakeFunc func(ctx context.Context, conn net.Conn, u *url.URL, h http.Header) (net.Conn, http.Header, error)

// Carrier names for Dialer.Carrier.
const (
	Auto      = "auto"
	Raw       = "raw"
	WebSocket = "websocket"
	Poll      = poll.Name
)

// ErrUnknownCarrier is returned for a Dialer.Carrier Dial does not know.
var ErrUnknownCarrier = errors.New(`porthole: unknown carrier: use "auto", "raw", "websocket" or "poll"`)

func (d *Dialer) carrierName(u *url.URL) (string, error) {
	switch d.Carrier {
	case "":
		if u.Scheme == "ws" || u.Scheme == "wss" {
			return WebSocket, nil
		}
		return Auto, nil
	case Auto, Raw, WebSocket, Poll:
		return d.Carrier, nil
	}
	return "", fmt.Errorf("%w (got %q)", ErrUnknownCarrier, d.Carrier)
}

// dialCarrier opens a tunnel over one carrier, through px when not nil,
// within the handshake timeout.
func (d *Dialer) dialCarrier(ctx context.Context, u *url.URL, name string, px *url.URL) (net.Conn, error) {
	conn, _, err := d.dialCarrierHeader(ctx, u, name, px)
	return conn, err
}

// dialCarrierHeader is dialCarrier that also returns the header of the
// gateway's 101 (none for poll).
func (d *Dialer) dialCarrierHeader(ctx context.Context, u *url.URL, name string, px *url.URL) (net.Conn, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, d.handshakeTimeout())
	defer cancel()
	if name == Poll {
		conn, err := d.dialPoll(ctx, u, px)
		return conn, nil, err
	}
	return d.dialUpgrade(ctx, u, name, px)
}

// dialUpgrade opens a tunnel over a carrier that upgrades one connection:
// TCP to the gateway or the proxy, CONNECT through the proxy for TLS
// gateways and WebSocket, TLS with the gateway, then the handshake (in
// absolute form when it goes to the proxy itself).
func (d *Dialer) dialUpgrade(ctx context.Context, u *url.URL, name string, px *url.URL) (net.Conn, http.Header, error) {
	dialTCP := d.DialContext
	if dialTCP == nil {
		dialTCP = (&net.Dialer{}).DialContext
	}
	addr := hostPort(u)
	target := addr
	if px != nil {
		target = proxy.Addr(px)
	}
	conn, err := dialTCP(ctx, "tcp", target)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Conn, http.Header, error) {
		conn.Close()
		return nil, nil, err
	}
	handshake := handshakes[name]
	h := d.Header
	if px != nil {
		if px.Scheme == "https" {
			tc := tls.Client(conn, &tls.Config{ServerName: px.Hostname(), MinVersion: tls.VersionTLS12})
			if err := tc.HandshakeContext(ctx); err != nil {
				return fail(fmt.Errorf("TLS handshake with proxy %s: %w", target, err))
			}
			conn = tc
		}
		switch {
		case secure(u) || name == WebSocket:
			tunnel, err := proxy.Connect(ctx, conn, px, addr)
			if err != nil {
				return fail(err)
			}
			conn = tunnel
		default:
			handshake = raw.ProxyHandshake
			if auth := proxy.Authorization(px); auth != "" {
				h = h.Clone()
				if h == nil {
					h = make(http.Header)
				}
				h.Set("Proxy-Authorization", auth)
			}
		}
	}
	if secure(u) {
		cfg, err := d.tlsConfig(u)
		if err != nil {
			return fail(err)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("TLS handshake with %s: %w", u.Host, err))
		}
		conn = tc
	}
	tun, answer, err := handshake(ctx, conn, u, h)
	if err != nil {
		return fail(proxyRefusal(err, px))
	}
	return netutil.SafeDeadlines(tun), answer, nil
}

// handshakes are the client handshakes of the carriers that upgrade one
// connection.
var handshakes = map[string]handshakeFunc{
	Raw:       raw.Handshake,
	WebSocket: websocket.Handshake,
}

// dialPoll opens a poll session; its requests go through an
// http.Transport of the Conn's own, configured as the Dialer says.
func (d *Dialer) dialPoll(ctx context.Context, u *url.URL, px *url.URL) (net.Conn, error) {
	tr := &http.Transport{
		DialContext:         d.DialContext,
		TLSHandshakeTimeout: d.handshakeTimeout(),
	}
	if px != nil {
		tr.Proxy = func(*http.Request) (*url.URL, error) { return px, nil }
		tr.OnProxyConnectResponse = func(_ context.Context, _ *url.URL, _ *http.Request, resp *http.Response) error {
			if resp.StatusCode/100 == 2 {
				return nil
			}
			return proxyError(px, resp.StatusCode, http.StatusText(resp.StatusCode))
		}
	}
	pu := *u
	switch u.Scheme {
	case "ws":
		pu.Scheme = "http"
	case "wss":
		pu.Scheme = "https"
	}
	if secure(u) {
		cfg, err := d.tlsConfig(u)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	}
	conn, err := poll.Dial(ctx, &pu, &poll.Options{Transport: tr, Header: d.Header, CloseTransport: true})
	if err != nil {
		return nil, proxyRefusal(err, px)
	}
	return conn, nil
}

// proxyRefusal turns err, when it is an answer that did not come from the
// gateway and a proxy px is in use, into that proxy's refusal.
func proxyRefusal(err error, px *url.URL) error {
	var se *StatusError
	if px != nil && errors.As(err, &se) && se.Intermediary {
		return proxyError(px, se.Code, se.Reason)
	}
	return err
}

func proxyError(px *url.URL, code int, reason string) *proxy.Error {
	return &proxy.Error{Proxy: proxy.Addr(px), Code: code, Reason: reason, SentCredentials: px.User != nil}
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
