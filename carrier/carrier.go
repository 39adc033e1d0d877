// Package carrier defines how a stream rides over HTTP. Each carrier is a
// package beside this one (carrier/raw, ...) with a server side that the
// gateway uses and a client side that porthole.Dial uses; this package holds
// what they share.
package carrier

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Header names and values every carrier shares.
const (
	// VersionHeader is sent by every porthole client, so the gateway can tell
	// a porthole client whose Upgrade header was stripped on the way from a
	// legacy bare client.
	VersionHeader = "Porthole-Version"
	// Version is the protocol version porthole clients send.
	Version = "1"
	// UserAgent is the User-Agent porthole clients send unless told otherwise.
	UserAgent = "porthole/1"
	// PeerPortHeader, on the gateway's 101 answers, is the port of the
	// address the request came from as the gateway saw it. A client whose
	// own port differs knows an intermediary carries its connection, one
	// that may cut it when idle.
	PeerPortHeader = "Porthole-Peer-Port"
	// TokenProtocol prefixes a bearer token in a Sec-WebSocket-Protocol
	// entry, where a browser, which cannot set headers on a WebSocket,
	// puts it: new WebSocket(url, ["binary", "porthole.token." + token]).
	// The gateway never selects that entry as the subprotocol.
	TokenProtocol = "porthole.token."
	// CarriersHeader, on a refusal of a carrier a route does not allow,
	// lists the carriers it does, so a client can try another.
	CarriersHeader = "Porthole-Carriers"
)

// PeerPort returns the value of PeerPortHeader for a request from
// remoteAddr (an http.Request's RemoteAddr).
func PeerPort(remoteAddr string) string {
	_, port, _ := net.SplitHostPort(remoteAddr)
	return port
}

// Relayed reports whether an intermediary carries conn, whose handshake
// was answered with h: the gateway saw the request come from another port
// than conn's own, or did not say.
func Relayed(conn net.Conn, h http.Header) bool {
	port := h.Get(PeerPortHeader)
	return port == "" || port != PeerPort(conn.LocalAddr().String())
}

// ClientHeader returns a copy of h (nil allowed) with what every porthole
// client request carries: the version header, and the User-Agent unless h
// sets one.
func ClientHeader(h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = make(http.Header)
	}
	h.Set(VersionHeader, Version)
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", UserAgent)
	}
	return h
}

// A Carrier accepts tunnels of one kind on a route (the server side).
type Carrier interface {
	// Name is the carrier's name, as in "raw".
	Name() string
	// Wants reports whether r asks for this carrier.
	Wants(r *http.Request) bool
	// Check validates r before the gateway opens the service. Its error is a
	// *StatusError the gateway sends as the answer.
	Check(r *http.Request) error
	// Accept completes the handshake and returns the tunnel. It is called
	// once the service is open. The caller owns the returned connection.
	Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error)
}

// A SessionCarrier is a carrier whose tunnels span many requests (the poll
// carrier): after the request that opens a tunnel, the gateway hands it
// every request that belongs to the tunnel's session.
type SessionCarrier interface {
	Carrier
	// InSession reports whether r belongs to an open session rather than
	// asking for a new tunnel.
	InSession(r *http.Request) bool
	// ServeSession answers r, a request in a session.
	ServeSession(w http.ResponseWriter, r *http.Request)
}

// StatusError is an HTTP answer that refuses a tunnel: the gateway sends it,
// and a client reports it when it reads one instead of a handshake.
type StatusError struct {
	Code   int         // HTTP status code
	Reason string      // one line saying what was wrong
	Header http.Header // extra response headers, may be nil
	// Intermediary is set by a client for an answer that lacks the
	// gateway's VersionHeader: a proxy or load balancer on the way
	// answered, not the gateway.
	Intermediary bool
}

// Errorf returns a *StatusError with the code and a formatted reason.
func Errorf(code int, format string, args ...any) *StatusError {
	return &StatusError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Error reads as "gateway answered 502 Bad Gateway: reason", or "an
// intermediary answered ..." when the gateway did not.
func (e *StatusError) Error() string {
	who := "gateway"
	if e.Intermediary {
		who = "an intermediary (not the gateway)"
	}
	s := fmt.Sprintf("%s answered %d %s", who, e.Code, http.StatusText(e.Code))
	if e.Reason != "" && !strings.EqualFold(e.Reason, http.StatusText(e.Code)) {
		s += ": " + e.Reason
	}
	return s
}

// Write sends e as the response: the status and the reason as a one-line
// text body.
func (e *StatusError) Write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set(VersionHeader, Version) // tells the client the gateway answered
	w.WriteHeader(e.Code)
	fmt.Fprintln(w, e.Reason)
}

// HeaderHasToken reports whether the comma-separated header field name in h
// lists token, ignoring case (as in "Connection: keep-alive, Upgrade").
func HeaderHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}
