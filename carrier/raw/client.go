package raw

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/internal/netutil"
)

// Handshake asks the gateway for a raw tunnel to the route at u's path over
// conn, an established connection to the gateway (TLS already done for
// https). header adds request headers. ctx bounds the handshake only, never
// the tunnel.
//
// On success the returned connection is conn itself, or conn with the bytes
// the gateway sent right after its 101 in front; it supports CloseWrite when
// conn does. The 101's header comes with it. On failure Handshake does not close conn; a refusal by the
// gateway is a *carrier.StatusError.
func Handshake(ctx context.Context, conn net.Conn, u *url.URL, header http.Header) (net.Conn, http.Header, error) {
	return handshake(ctx, conn, u, header, false)
}

// ProxyHandshake is Handshake through an HTTP forward proxy at the other
// end of conn, for an http:// gateway: the request goes in absolute form
// ("GET http://gateway/path HTTP/1.1"), and header carries the proxy's
// Proxy-Authorization when it needs one. Many proxies drop the Upgrade
// header of such a request; the gateway then refuses with 426.
func ProxyHandshake(ctx context.Context, conn net.Conn, u *url.URL, header http.Header) (net.Conn, http.Header, error) {
	return handshake(ctx, conn, u, header, true)
}

func handshake(ctx context.Context, conn net.Conn, u *url.URL, header http.Header, viaProxy bool) (net.Conn, http.Header, error) {
	target := &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if viaProxy {
		target.Scheme, target.Host = "http", u.Host
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        target,
		Host:       u.Host,
		Header:     carrier.ClientHeader(header),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", Token)

	release := carrier.Bound(ctx, conn)
	br := bufio.NewReader(conn)
	resp, err := roundTrip(conn, br, req, viaProxy)
	if rerr := release(); rerr != nil {
		return nil, nil, rerr
	}
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, nil, carrier.ReadStatusError(resp)
	}
	if !carrier.HeaderHasToken(resp.Header, "Upgrade", Token) {
		return nil, nil, fmt.Errorf("gateway answered 101 with Upgrade %q, not %q", resp.Header.Get("Upgrade"), Token)
	}
	var prefix []byte
	if n := br.Buffered(); n > 0 {
		prefix, _ = br.Peek(n)
	}
	return netutil.WithPrefix(conn, prefix), resp.Header, nil
}

func roundTrip(conn net.Conn, br *bufio.Reader, req *http.Request, viaProxy bool) (*http.Response, error) {
	write := req.Write
	if viaProxy {
		write = req.WriteProxy
	}
	if err := write(conn); err != nil {
		return nil, fmt.Errorf("sending the upgrade request: %w", err)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("reading the gateway's answer: %w", err)
	}
	return resp, nil
}
