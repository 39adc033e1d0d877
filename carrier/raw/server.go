// Package raw is the raw carrier: an HTTP/1.1 Upgrade to "porthole" (or to
// "connect-tcp", the token of draft-ietf-httpbis-connect-tcp) answered with
// 101 Switching Protocols, after which the connection is the stream; and the
// bare form of classic embedded web servers, "GET /svc HTTP/1.0" and a blank
// line, after which the socket is the stream with no answer at all.
package raw

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/internal/netutil"
)

// Upgrade tokens the raw carrier accepts.
const (
	Token           = "porthole"
	ConnectTCPToken = "connect-tcp"
)

// Name is the carrier's name.
const Name = "raw"

// Server is the raw carrier's server side.
type Server struct {
	// Bare accepts the bare form: an HTTP/1.0 GET with no Upgrade header
	// and no porthole headers becomes the stream without an answer.
	Bare bool
	// WriteTimeout bounds writing the 101 answer; zero means 10 seconds.
	WriteTimeout time.Duration
}

// Name returns "raw".
func (*Server) Name() string { return Name }

// Wants reports whether r asks for an upgrade to porthole or connect-tcp, or
// is the bare form on a route that allows it.
func (s *Server) Wants(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return upgradeToken(r) != ""
	}
	return s.Bare && IsBare(r)
}

// IsBare reports whether r has the bare form: GET over HTTP/1.0 with neither
// an Upgrade header nor porthole's version header.
func IsBare(r *http.Request) bool {
	return r.Method == http.MethodGet && r.ProtoMajor == 1 && r.ProtoMinor == 0 &&
		r.Header.Get("Upgrade") == "" && r.Header.Get(carrier.VersionHeader) == ""
}

func upgradeToken(r *http.Request) string {
	for _, t := range []string{Token, ConnectTCPToken} {
		if carrier.HeaderHasToken(r.Header, "Upgrade", t) {
			return t
		}
	}
	return ""
}

// Check validates an upgrade request: GET, HTTP/1.1, Connection: Upgrade,
// no body. The bare form needs no more than Wants saw.
func (s *Server) Check(r *http.Request) error {
	if r.Header.Get("Upgrade") == "" {
		return nil
	}
	if r.Method != http.MethodGet {
		e := carrier.Errorf(http.StatusMethodNotAllowed, "method %s cannot upgrade; send GET with Upgrade: %s", r.Method, Token)
		e.Header = http.Header{"Allow": {http.MethodGet}}
		return e
	}
	if !r.ProtoAtLeast(1, 1) {
		return carrier.Errorf(http.StatusBadRequest, "Upgrade needs HTTP/1.1, got %s", r.Proto)
	}
	if !carrier.HeaderHasToken(r.Header, "Connection", "upgrade") {
		return carrier.Errorf(http.StatusBadRequest, "Upgrade: %s without Connection: Upgrade", upgradeToken(r))
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return carrier.Errorf(http.StatusBadRequest, "an upgrade request carries no body")
	}
	if upgradeToken(r) == ConnectTCPToken && r.Header.Get("Capsule-Protocol") != "" {
		return carrier.Errorf(http.StatusNotImplemented, "connect-tcp with the capsule protocol is not supported; send it without Capsule-Protocol")
	}
	return nil
}

// Accept hijacks the connection, answers 101 (nothing for the bare form) and
// returns the stream. Bytes the client sent right after the request head,
// already in the server's read buffer, are read first from the returned
// connection. The caller owns and closes it.
func (s *Server) Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	token := upgradeToken(r)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("raw carrier: cannot take over the connection: %w", err)
	}
	var prefix []byte
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		prefix = bytes.Clone(p)
	}
	if token != "" {
		timeout := s.WriteTimeout
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		conn.SetWriteDeadline(time.Now().Add(timeout))
		_, err := fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s: %s\r\n\r\n",
			token, carrier.PeerPortHeader, carrier.PeerPort(r.RemoteAddr))
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("raw carrier: writing 101: %w", err)
		}
	}
	// The server's header deadline and ours end here: the tunnel has none.
	conn.SetDeadline(time.Time{})
	return netutil.WithPrefix(conn, prefix), nil
}
