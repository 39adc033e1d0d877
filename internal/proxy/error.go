package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/porthole/porthole/carrier"
)

// maxReasonBytes and maxReasonWait bound how much of a refusal's body
// Connect reads, and how long it waits for it: an HTTP/1.0 proxy that
// sends no length and keeps the connection open would make it wait for
// ctx's deadline.
const (
	maxReasonBytes = 4 << 10
	maxReasonWait  = time.Second
)

// Error is a proxy's refusal to open a tunnel: its answer to CONNECT was
// not 2xx. A gateway's refusal is a *carrier.StatusError instead.
type Error struct {
	Proxy string // the proxy's host:port, never its credentials
	Code  int    // the HTTP status code of the proxy's answer
	// Reason is the first line of the answer's body, the title of an HTML
	// body (without a leading status code, as in Tinyproxy's "403 Access
	// violation"), or the status line's text; squid's error code follows in
	// brackets, as in "ERROR: The requested URL could not be retrieved
	// [ERR_ACCESS_DENIED]", as squid's pages all have that title.
	Reason string
	// SentCredentials reports whether the request carried
	// Proxy-Authorization.
	SentCredentials bool
}

// Error reads as "proxy 127.0.0.1:3128 answered 407 Proxy Authentication
// Required: reason", followed by what to do where that is clear.
func (e *Error) Error() string {
	s := fmt.Sprintf("proxy %s answered %d", e.Proxy, e.Code)
	if text := http.StatusText(e.Code); text != "" {
		s += " " + text
	}
	if e.Reason != "" && !strings.EqualFold(e.Reason, http.StatusText(e.Code)) {
		s += ": " + e.Reason
	}
	if hint := e.hint(); hint != "" {
		s += " (" + hint + ")"
	}
	return s
}

// hint says what to do about e, or "".
func (e *Error) hint() string {
	switch {
	// Tinyproxy answers wrong credentials 401.
	case (e.Code == http.StatusProxyAuthRequired || e.Code == http.StatusUnauthorized) && e.SentCredentials:
		return "the proxy refused the user and password in the proxy URL"
	case e.Code == http.StatusProxyAuthRequired:
		return "give credentials in the proxy URL as http://user:pass@host:port"
	case e.Code == http.StatusForbidden:
		return "the proxy does not allow this destination; many allow CONNECT only to port 443"
	case e.Code == http.StatusMethodNotAllowed || e.Code == http.StatusNotImplemented:
		return "the proxy does not support CONNECT"
	case e.Code == http.StatusBadGateway || e.Code == http.StatusServiceUnavailable || e.Code == http.StatusGatewayTimeout:
		return "the proxy could not reach the gateway"
	}
	return ""
}

// readError turns a refusal into an *Error, reading some of its body
// from conn.
func readError(ctx context.Context, conn net.Conn, resp *http.Response, proxy string, sentCredentials bool) *Error {
	ctx, cancel := context.WithTimeout(ctx, maxReasonWait)
	defer cancel()
	release := carrier.Bound(ctx, conn)
	// The rest of the body is left unread, not closed: Close would read
	// it all. The caller closes conn.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReasonBytes))
	release()
	return &Error{Proxy: proxy, Code: resp.StatusCode, Reason: carrier.Reason(resp, string(body)), SentCredentials: sentCredentials}
}
