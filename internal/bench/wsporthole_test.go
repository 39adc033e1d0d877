package bench

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// servePorthole returns a relay serving porthole's gateway: its WebSocket
// carrier then runs the same loads as the bare relays on each library.
// pingInterval is the gateway's PingInterval: 0 for its default, negative
// for no keep-alive.
func servePorthole(pingInterval time.Duration) func(net.Listener, *wsRelay) error {
	return func(ln net.Listener, r *wsRelay) error {
		var routes []gateway.Route
		for p, addr := range r.backends {
			routes = append(routes, gateway.Route{Path: p, Service: &service.TCP{Addr: addr}})
		}
		gw, err := gateway.New(&gateway.Options{
			Routes:          routes,
			MaxMessageBytes: wsReadLimit,
			PingInterval:    pingInterval,
			Logger:          slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return err
		}
		r.tunnels.Store(gw.OpenTunnels)
		return gw.Serve(ln)
	}
}

// dialPorthole opens a WebSocket tunnel with porthole.Dial.
func dialPorthole(ctx context.Context, url string) (net.Conn, error) {
	return porthole.Dial(ctx, url, nil)
}
