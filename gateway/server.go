package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve accepts HTTP connections on ln and serves them until Shutdown. It
// always returns a non-nil error; after Shutdown, http.ErrServerClosed.
//
// The server reads request heads within ReadHeaderTimeout and MaxHeaderBytes;
// it sets no read or write timeout on the tunnels it hands over.
func (g *Gateway) Serve(ln net.Listener) error {
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: g.opts.ReadHeaderTimeout,
		MaxHeaderBytes:    g.opts.MaxHeaderBytes,
		IdleTimeout:       2 * g.opts.ReadHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	g.mu.Lock()
	if g.shutdown {
		g.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	g.servers[srv] = struct{}{}
	g.mu.Unlock()
	return srv.Serve(ln)
}

// ServeTLS is Serve over TLS with cfg (which needs a certificate). It
// enforces TLS 1.2 or newer and HTTP/1.1, whose Upgrade the carriers use.
// While a route verifies client certificates (Auth.ClientCAs), the
// handshake asks clients for one; each route then checks it against its
// own CAs. cfg's GetConfigForClient is not used.
func (g *Gateway) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	cfg = cfg.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.NextProtos = []string{"http/1.1"}
	askCert := cfg.Clone()
	askCert.ClientAuth = tls.RequestClientCert
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if g.table.Load().clientCerts {
			return askCert, nil
		}
		return nil, nil
	}
	return g.Serve(tls.NewListener(ln, cfg))
}

// OpenTunnels returns the number of tunnels open or in their handshake.
func (g *Gateway) OpenTunnels() int { return g.tunnels.count() }

// Ready reports whether the gateway takes new tunnels: true until Shutdown
// begins, false while it drains and after.
func (g *Gateway) Ready() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.shutdown
}

// Shutdown refuses new tunnels (503), then waits for the open ones to
// end, then stops the servers. The servers keep answering while the
// tunnels drain, since a poll session needs new requests to move its
// bytes; readiness (Ready) is false from the start. When ctx ends first,
// Shutdown closes the tunnels still open, gives the answers they wake (a
// poll receive learning its end) a moment to go out, closes the servers
// and the connections still in a handshake, and returns ctx's error.
// Tunnels accepted through Handler on another server are drained too.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.shutdown = true
	servers := make([]*http.Server, 0, len(g.servers))
	for s := range g.servers {
		servers = append(servers, s)
	}
	g.mu.Unlock()

	var errs []error
	if err := g.tunnels.drain(ctx); err != nil {
		errs = append(errs, err)
	}
	serversCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		serversCtx, cancel = context.WithTimeout(context.Background(), lastAnswers)
		defer cancel()
	}
	for _, s := range servers {
		if err := s.Shutdown(serversCtx); err != nil {
			s.Close()
			if len(errs) == 0 {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// lastAnswers bounds, after the shutdown deadline, how long the servers
// may finish the answers in flight.
const lastAnswers = 500 * time.Millisecond
