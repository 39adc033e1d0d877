// Package websocket is the WebSocket carrier (RFC 6455), for browsers and
// WebSocket-aware proxies: the same route path as the other carriers with
// "Upgrade: websocket"; binary messages carry the stream both ways, a text
// message from a browser is taken as its UTF-8 bytes. Framing is
// github.com/gorilla/websocket's; this package adds the handshake checks,
// the origin policy, UTF-8 validation, half-close and keep-alive pings.
package websocket

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/internal/bufpool"
	"github.com/porthole/porthole/internal/netutil"
)

// Subprotocol is the one subprotocol the carrier speaks: binary messages,
// as websockify and noVNC clients ask for it. A client may also ask for
// none.
const Subprotocol = "binary"

// Name is the carrier's name.
const Name = "websocket"

// Server is the WebSocket carrier's server side.
type Server struct {
	// AllowedOrigins lists the browser origins ("https://app.example")
	// that may open tunnels. Empty means only the gateway's own: an Origin
	// whose host equals the request's Host. A request without Origin (not
	// from a browser) is allowed.
	AllowedOrigins []string
	// ReadLimit caps one incoming message; a larger one closes the tunnel
	// with 1009. Zero means 1 MiB.
	ReadLimit int64
	// PingInterval is how often an idle tunnel is pinged, so intermediaries
	// with idle timeouts keep it; a peer silent for two intervals is cut.
	// Zero means 30 seconds; negative turns pings off.
	PingInterval time.Duration
	// HandshakeTimeout bounds writing the handshake answer. Zero means 10
	// seconds.
	HandshakeTimeout time.Duration

	once      sync.Once
	upgrader  websocket.Upgrader
	keepalive *keepalive // nil without pings
}

// readBufferSize is each tunnel's read buffer, held for its life.
const readBufferSize = 1 << 10

// Name returns "websocket".
func (*Server) Name() string { return Name }

// Wants reports whether r asks to upgrade to websocket.
func (*Server) Wants(r *http.Request) bool {
	return carrier.HeaderHasToken(r.Header, "Upgrade", "websocket")
}

// Check validates the handshake as RFC 6455 section 4.2.1 lays it out,
// and the origin.
func (s *Server) Check(r *http.Request) error {
	if r.Method != http.MethodGet {
		e := carrier.Errorf(http.StatusMethodNotAllowed, "a WebSocket handshake is a GET, not %s", r.Method)
		e.Header = http.Header{"Allow": {http.MethodGet}}
		return e
	}
	if !r.ProtoAtLeast(1, 1) {
		return carrier.Errorf(http.StatusBadRequest, "a WebSocket handshake needs HTTP/1.1 or newer, got %s", r.Proto)
	}
	if !carrier.HeaderHasToken(r.Header, "Connection", "upgrade") {
		return carrier.Errorf(http.StatusBadRequest, "Upgrade: websocket without Connection: Upgrade")
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		e := carrier.Errorf(http.StatusUpgradeRequired, "Sec-WebSocket-Version %q is not supported; this gateway speaks 13", v)
		e.Header = http.Header{"Sec-Websocket-Version": {"13"}}
		return e
	}
	if key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key")); err != nil || len(key) != 16 {
		return carrier.Errorf(http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64, got %q", r.Header.Get("Sec-WebSocket-Key"))
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return carrier.Errorf(http.StatusBadRequest, "a WebSocket handshake carries no body")
	}
	protos := slices.DeleteFunc(websocket.Subprotocols(r), func(p string) bool {
		return strings.HasPrefix(p, carrier.TokenProtocol) // a credential, not a subprotocol
	})
	if len(protos) > 0 && !slices.Contains(protos, Subprotocol) {
		return carrier.Errorf(http.StatusBadRequest, "subprotocols %q are not supported; ask for %q or none", protos, Subprotocol)
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin, r.Host) {
		return carrier.Errorf(http.StatusForbidden, "origin not allowed: %s", origin)
	}
	return nil
}

func (s *Server) originAllowed(origin, host string) bool {
	if len(s.AllowedOrigins) > 0 {
		return slices.ContainsFunc(s.AllowedOrigins, func(o string) bool { return strings.EqualFold(o, origin) })
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// Accept answers 101 and returns the tunnel. Extensions a client asks for
// (permessage-deflate) are declined as RFC 6455 says, by leaving them out
// of the answer: a tunnel's bytes are mostly encrypted and do not compress.
func (s *Server) Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	s.once.Do(func() {
		timeout := s.HandshakeTimeout
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		s.upgrader = websocket.Upgrader{
			HandshakeTimeout: timeout,
			// Frame heads go through this buffer; a payload read into the
			// relay's copy buffer bypasses it. Small, as an idle tunnel
			// holds it.
			ReadBufferSize:  readBufferSize,
			WriteBufferSize: bufpool.Small,
			WriteBufferPool: &writeBuffers,
			Subprotocols:    []string{Subprotocol},
			CheckOrigin:     func(*http.Request) bool { return true }, // Check did it
			Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
				carrier.Errorf(status, "%v", reason).Write(w)
			},
		}
		if period := s.pingInterval(); period > 0 {
			s.keepalive = &keepalive{period: period}
		}
	})
	hj := &hijacker{ResponseWriter: w}
	ws, err := s.upgrader.Upgrade(hj, r, http.Header{carrier.PeerPortHeader: {carrier.PeerPort(r.RemoteAddr)}})
	if err != nil {
		return nil, fmt.Errorf("websocket carrier: %w", err)
	}
	hj.handOff.Conn().SetDeadline(time.Time{})
	return newConn(ws, hj.handOff, s.readLimit(), s.keepalive), nil
}

// hijacker hands gorilla the hijacked connection through
// netutil.NewHandOff, for the tunnel's WriteTo.
type hijacker struct {
	http.ResponseWriter
	handOff *netutil.HandOff
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	var reads net.Conn
	reads, h.handOff = netutil.NewHandOff(nc)
	return reads, brw, nil
}

func (s *Server) readLimit() int64 {
	if s.ReadLimit == 0 {
		return 1 << 20
	}
	return s.ReadLimit
}

func (s *Server) pingInterval() time.Duration {
	switch {
	case s.PingInterval == 0:
		return 30 * time.Second
	case s.PingInterval < 0:
		return 0
	}
	return s.PingInterval
}
