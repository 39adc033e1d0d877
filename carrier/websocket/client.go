package websocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/gorilla/websocket"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/internal/netutil"
)

// Handshake opens a WebSocket tunnel to the route at u's path over conn, an
// established connection to the gateway (TLS already done for https and
// wss). header adds request headers, among them Sec-WebSocket-Protocol to
// ask for subprotocols (by default "binary"). ctx bounds the handshake only.
//
// On success it returns the tunnel and the header of the gateway's 101. On
// failure Handshake does not close conn; a refusal by the gateway is a
// *carrier.StatusError with the status and the first line of its body.
func Handshake(ctx context.Context, conn net.Conn, u *url.URL, header http.Header) (net.Conn, http.Header, error) {
	h := carrier.ClientHeader(header)
	var protos []string
	if h.Get("Sec-WebSocket-Protocol") == "" {
		protos = []string{Subprotocol}
	}
	reads, handOff := netutil.NewHandOff(conn)
	given := func(context.Context, string, string) (net.Conn, error) { return reads, nil }
	d := websocket.Dialer{
		NetDialContext:    given,
		NetDialTLSContext: given,
		Subprotocols:      protos,
		WriteBufferSize:   MaxMessageSent,
		WriteBufferPool:   &clientWriteBuffers,
	}
	wsURL := *u
	switch u.Scheme {
	case "http", "ws":
		wsURL.Scheme = "ws"
	case "https", "wss":
		wsURL.Scheme = "wss"
	}
	release := carrier.Bound(ctx, conn)
	ws, resp, err := d.DialContext(ctx, wsURL.String(), h)
	if rerr := release(); rerr != nil {
		return nil, nil, rerr
	}
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return nil, nil, fmt.Errorf("gateway's 101 is not a valid WebSocket answer: %w", err)
			}
			return nil, nil, carrier.ReadStatusError(resp)
		}
		return nil, nil, fmt.Errorf("WebSocket handshake: %w", err)
	}
	return newConn(ws, handOff, 0, nil), resp.Header, nil
}
