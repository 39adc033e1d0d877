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
// conn does. On failure Handshake does not close conn; a refusal by the
// gateway is a *carrier.StatusError.
func Handshake(ctx context.Context, conn net.Conn, u *url.URL, header http.Header) (net.Conn, error) {
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery},
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
	resp, err := roundTrip(conn, br, req)
	if rerr := release(); rerr != nil {
		return nil, rerr
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, carrier.ReadStatusError(resp)
	}
	if !carrier.HeaderHasToken(resp.Header, "Upgrade", Token) {
		return nil, fmt.Errorf("gateway answered 101 with Upgrade %q, not %q", resp.Header.Get("Upgrade"), Token)
	}
	var prefix []byte
	if n := br.Buffered(); n > 0 {
		prefix, _ = br.Peek(n)
	}
	return netutil.WithPrefix(conn, prefix), nil
}

func roundTrip(conn net.Conn, br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("sending the upgrade request: %w", err)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("reading the gateway's answer: %w", err)
	}
	return resp, nil
}
