package bench

import (
	"context"
	"log/slog"
	"net"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// servePorthole serves porthole's gateway as the relay: its WebSocket
// carrier then runs the same loads as the bare relays on each library.
func servePorthole(ln net.Listener, r *wsRelay) error {
	var routes []gateway.Route
	for p, addr := range r.backends {
		routes = append(routes, gateway.Route{Path: p, Service: &service.TCP{Addr: addr}})
	}
	gw, err := gateway.New(&gateway.Options{
		Routes:          routes,
		MaxMessageBytes: wsReadLimit,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	r.tunnels.Store(gw.OpenTunnels)
	return gw.Serve(ln)
}

// dialPorthole opens a WebSocket tunnel with porthole.Dial.
func dialPorthole(ctx context.Context, url string) (net.Conn, error) {
	return porthole.Dial(ctx, url, nil)
}
