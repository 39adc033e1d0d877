// Package poll is the request carrier: a tunnel made of plain HTTP requests,
// for intermediaries that refuse upgrades or buffer bodies. After the
// httpsock design, made lossless:
//
//	open     POST /svc, Porthole-Carrier: poll     → 201, Porthole-Session: TOKEN
//	send     PUT /svc?n=NONCE, Porthole-Offset: N   → 204, Porthole-Ack: M
//	receive  GET /svc?n=NONCE, Porthole-Ack: K      → 200, Porthole-Offset: K, bytes from K
//	close    DELETE /svc                            → 204
//
// Every byte has a stream offset in each direction. A send names the
// offset of its first byte and the gateway keeps only bytes it has not
// seen, so a retried send never duplicates; a receive names the offset the
// client holds and the gateway keeps bytes until a later receive
// acknowledges them, so a lost answer is sent again. Every answer is whole,
// with a Content-Length, and none may be cached.
//
// For intermediaries that refuse PUT or DELETE, each step is also a POST
// naming it in Porthole-Op (send, recv, close); the client switches to that
// form by itself when a PUT is refused.
//
// The server side is Server, a carrier.SessionCarrier the gateway uses; the
// client side is Dial.
package poll

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/porthole/porthole/internal/bufpool"
)

// Header names of the protocol.
const (
	// CarrierHeader names the carrier on the request that opens a session.
	CarrierHeader = "Porthole-Carrier"
	// SessionHeader carries the session token: in the answer that opens a
	// session, then on every request of it. Never in the URL.
	SessionHeader = "Porthole-Session"
	// OffsetHeader is the stream offset of a body's first byte.
	OffsetHeader = "Porthole-Offset"
	// AckHeader is the offset up to which bytes have been taken: the
	// gateway's on a send's answer, the client's on a receive.
	AckHeader = "Porthole-Ack"
	// EOFHeader, "1", marks the end of a direction's stream.
	EOFHeader = "Porthole-EOF"
	// ErrorHeader says why the service's stream broke, on a 502 answer to
	// a receive.
	ErrorHeader = "Porthole-Error"
	// OpHeader names the step on a POST, for intermediaries that refuse
	// PUT or DELETE: send, recv or close.
	OpHeader = "Porthole-Op"
	// OpenHeader, on the request that opens a session, is a random name
	// the client gives the open, so that a retried open whose first answer
	// was lost gets the same session rather than a second one.
	OpenHeader = "Porthole-Open"
)

// maxOpenIDBytes bounds an OpenHeader value.
const maxOpenIDBytes = 64

// Name is the carrier's name, and the value of CarrierHeader.
const Name = "poll"

// The steps, as OpHeader names them.
const (
	opSend  = "send"
	opRecv  = "recv"
	opClose = "close"
)

// Defaults of the server's and client's settings.
const (
	DefaultLongPoll    = 25 * time.Second
	DefaultIdleTimeout = 60 * time.Second
	DefaultBufferBytes = 1 << 20
)

// maxBodyBytes bounds the body of a client's send and of the gateway's
// answer to a receive: big enough that a request's cost is small beside
// its bytes, small enough that the next send fits in the gateway's buffer
// while one is taken in. Bodies are read into buffers of that size from
// bufpool, lent only while a body is on its way.
const maxBodyBytes = bufpool.Large

// parseOffset reads a non-negative stream offset from header name of h.
func parseOffset(h http.Header, name string) (int64, error) {
	v := h.Get(name)
	if v == "" {
		return 0, fmt.Errorf("missing %s header", name)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || v[0] < '0' || v[0] > '9' {
		return 0, fmt.Errorf("%s %q is not a stream offset (a decimal number from 0)", name, v)
	}
	return n, nil
}

// opOf returns the step r asks for, from its method or, on a POST, its
// OpHeader.
func opOf(r *http.Request) string {
	switch r.Method {
	case http.MethodPut:
		return opSend
	case http.MethodGet:
		return opRecv
	case http.MethodDelete:
		return opClose
	case http.MethodPost:
		return r.Header.Get(OpHeader)
	}
	return ""
}
