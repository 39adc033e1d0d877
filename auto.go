package porthole

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/internal/proxy"
)

// attemptTimeout bounds each carrier that auto tries before the last one,
// so a proxy that holds an upgrade request cannot hold the dial.
const attemptTimeout = 5 * time.Second

// remembered maps a gateway, and the proxy to it, to the carrier that last
// worked there, for the life of the process.
var remembered sync.Map

// dialAuto tries raw, then websocket, then poll, starting with the one
// that worked last for this gateway, and falls back as soon as an answer
// shows a carrier cannot work through what lies between. A raw tunnel that
// an intermediary carries is passed over while a carrier with keep-alives
// may work: an intermediary with an idle timeout would cut it, and raw
// bytes leave no room for keep-alives.
func (d *Dialer) dialAuto(ctx context.Context, u *url.URL, px *url.URL) (net.Conn, error) {
	key := u.Scheme + "://" + u.Host
	if px != nil {
		key += " via " + px.Redacted()
	}
	order := []string{Raw, WebSocket, Poll}
	if v, ok := remembered.Load(key); ok {
		first := v.(string)
		order = append([]string{first}, slices.DeleteFunc(order, func(n string) bool { return n == first })...)
	}
	var (
		failures   []string
		last       error
		rawRelayed bool
	)
	for i, name := range order {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if i < len(order)-1 {
			actx, cancel = context.WithTimeout(ctx, attemptTimeout)
		}
		conn, answer, err := d.dialCarrierHeader(actx, u, name, px)
		cancel()
		if err == nil && name == Raw && (px != nil || carrier.Relayed(conn, answer)) && i < len(order)-1 {
			conn.Close()
			rawRelayed = true
			d.logf("carrier raw works, but an intermediary carries it and raw has no keep-alives; trying a carrier that has them", "gateway", u.Redacted())
			continue
		}
		if err == nil {
			remembered.Store(key, name)
			d.logf("carrier chosen", "carrier", name, "gateway", u.Redacted())
			return conn, nil
		}
		if ctx.Err() != nil || !fallsBack(err) {
			return nil, err
		}
		failures = append(failures, name+": "+err.Error())
		last = err
		if i < len(order)-1 {
			d.logf("carrier failed; trying the next", "carrier", name, "next", order[i+1], "gateway", u.Redacted(), "err", err)
		}
	}
	if rawRelayed {
		d.logf("no carrier with keep-alives worked; using raw, which an idle timeout on the way may cut", "gateway", u.Redacted())
		conn, err := d.dialCarrier(ctx, u, Raw, px)
		if err == nil {
			remembered.Store(key, Raw)
			d.logf("carrier chosen", "carrier", Raw, "gateway", u.Redacted())
		}
		return conn, err
	}
	return nil, &noCarrierError{failures: failures, last: last}
}

// noCarrierError says why each carrier failed; it wraps the last failure.
type noCarrierError struct {
	failures []string
	last     error
}

func (e *noCarrierError) Error() string {
	return "no carrier worked (" + strings.Join(e.failures, "; ") + ")"
}

func (e *noCarrierError) Unwrap() error { return e.last }

// fallsBack reports whether err, one carrier's failure, leaves hope for
// the next: an upgrade refused on the way, an intermediary's answer, a
// handshake cut or timed out. It does not for what every carrier would
// meet: nothing listening, a TLS failure (never retried less safely), a
// missing route, a dead service, a full gateway, a proxy that wants
// credentials.
func fallsBack(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		if se.Intermediary || se.Header.Get(carrier.CarriersHeader) != "" {
			return true // on the way, or a carrier the route does not allow
		}
		switch se.Code {
		case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUpgradeRequired, http.StatusNotImplemented:
			return true
		}
		return false
	}
	var pe *proxy.Error
	if errors.As(err, &pe) {
		return pe.Code != http.StatusProxyAuthRequired
	}
	var (
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		alert     tls.AlertError
		recordHdr tls.RecordHeaderError
		op        *net.OpError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname),
		errors.As(err, &invalid), errors.As(err, &alert), errors.As(err, &recordHdr),
		errors.Is(err, ErrFingerprint):
		return false
	case errors.As(err, &op) && op.Op == "dial":
		return false
	}
	return true
}

func (d *Dialer) logf(msg string, args ...any) {
	if d.Logger != nil {
		d.Logger.Info(msg, args...)
	}
}
