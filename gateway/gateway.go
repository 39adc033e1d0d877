// Package gateway is porthole's server side: an http.Handler that matches a
// request's path to a route, lets the route's carriers take the handshake,
// opens the route's service, and relays the tunnel until it ends.
//
// Data flows one way: listener → Gateway.ServeHTTP (route match, limits) →
// carrier handshake → tunnel (a net.Conn) → service backend.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/carrier/raw"
	"github.com/porthole/porthole/carrier/websocket"
	"github.com/porthole/porthole/service"
	"github.com/porthole/porthole/web"
)

// Route binds a URL path on the gateway to a service.
type Route struct {
	// Path is the URL path, such as "/echo". It must start with "/" and may
	// not be "/" itself (the page lives there).
	Path string
	// Service is what the route's tunnels reach.
	Service service.Service
	// Bare allows the bare form "GET /path HTTP/1.0" on this route.
	Bare bool
	// Origins lists the browser origins ("https://app.example") allowed to
	// open WebSocket tunnels on this route. Empty means the gateway's own
	// host only.
	Origins []string
}

// Options configure a Gateway. The zero value of each field means its
// documented default.
type Options struct {
	// Routes are the gateway's routes; only these can be reached.
	Routes []Route
	// MaxTunnels caps open tunnels, counting those in their handshake;
	// beyond it requests get 503. Zero means 10,000.
	MaxTunnels int
	// HandshakeTimeout bounds opening the service and answering the
	// handshake. Zero means 10 seconds.
	HandshakeTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's head (and the TLS
	// handshake before it). Zero means 10 seconds.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes caps a request's head. Zero means 32 KiB.
	MaxHeaderBytes int
	// PingInterval is how often idle WebSocket tunnels are pinged, so that
	// intermediaries with idle timeouts keep them. Zero means 30 seconds;
	// negative turns pings off.
	PingInterval time.Duration
	// MaxMessageBytes caps one incoming WebSocket message; a larger one
	// closes the tunnel with 1009. Zero means 1 MiB.
	MaxMessageBytes int64
	// LongPoll is how long a poll receive waits for bytes before it
	// answers with none; keep it under intermediaries' timeouts. Zero
	// means 25 seconds.
	LongPoll time.Duration
	// SessionIdleTimeout ends a poll session without requests for this
	// long, closing its service connection. Zero means 60 seconds.
	SessionIdleTimeout time.Duration
	// SessionBufferBytes bounds each poll session's buffer in each
	// direction. Zero means 1 MiB.
	SessionBufferBytes int
	// Logger receives the gateway's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Gateway serves routes over HTTP and HTTPS. Create one with New.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	routes  map[string]*route
	page    http.Handler
	tunnels registry

	mu       sync.Mutex
	servers  map[*http.Server]struct{}
	shutdown bool
}

type route struct {
	Route
	carriers []carrier.Carrier
}

// New checks the options and returns a gateway.
func New(opts *Options) (*Gateway, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxTunnels == 0 {
		o.MaxTunnels = 10_000
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 32 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &Gateway{
		opts:    o,
		log:     o.Logger,
		routes:  make(map[string]*route),
		servers: make(map[*http.Server]struct{}),
	}
	g.tunnels.init(o.MaxTunnels)
	var pageRoutes []web.Route
	for _, r := range o.Routes {
		rt, err := newRoute(r, o)
		if err != nil {
			return nil, err
		}
		if _, dup := g.routes[r.Path]; dup {
			return nil, fmt.Errorf("route %s is given twice", r.Path)
		}
		g.routes[r.Path] = rt
		pageRoutes = append(pageRoutes, web.Route{Path: r.Path, Target: r.Service.String(), Bare: r.Bare})
	}
	g.page = web.Index(pageRoutes)
	return g, nil
}

func newRoute(r Route, o Options) (*route, error) {
	if !strings.HasPrefix(r.Path, "/") || r.Path == "/" {
		return nil, fmt.Errorf("route path %q must start with / and name a service, as in /echo", r.Path)
	}
	if r.Service == nil {
		return nil, fmt.Errorf("route %s has no service", r.Path)
	}
	return &route{Route: r, carriers: carriersFor(r, o)}, nil
}

func carriersFor(r Route, o Options) []carrier.Carrier {
	return []carrier.Carrier{
		&raw.Server{Bare: r.Bare, WriteTimeout: o.HandshakeTimeout},
		&websocket.Server{
			AllowedOrigins:   r.Origins,
			ReadLimit:        o.MaxMessageBytes,
			PingInterval:     o.PingInterval,
			HandshakeTimeout: o.HandshakeTimeout,
		},
		&poll.Server{
			LongPoll:    o.LongPoll,
			IdleTimeout: o.SessionIdleTimeout,
			BufferBytes: o.SessionBufferBytes,
			MaxSessions: o.MaxTunnels,
		},
	}
}

// ServeHTTP answers the page at "/" and tunnels on the routes; any other
// path gets 404.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt, ok := g.routes[r.URL.Path]; ok {
		g.serveRoute(w, r, rt)
		return
	}
	if r.URL.Path == "/" {
		g.page.ServeHTTP(w, r)
		return
	}
	carrier.Errorf(http.StatusNotFound, "no route %s on this gateway", r.URL.Path).Write(w)
}

// Handler returns a handler that serves every request as a tunnel to rt,
// whatever its path: the entry point for handlers mounted on another mux,
// such as porthole.Listener. Its tunnels count toward the gateway's cap and
// are drained by Shutdown.
func (g *Gateway) Handler(rt Route) (http.Handler, error) {
	route, err := newRoute(rt, g.opts)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serveRoute(w, r, route)
	}), nil
}

func (g *Gateway) serveRoute(w http.ResponseWriter, r *http.Request, rt *route) {
	for _, c := range rt.carriers {
		if sc, ok := c.(carrier.SessionCarrier); ok && sc.InSession(r) {
			sc.ServeSession(w, r)
			return
		}
	}
	c := pick(rt, r)
	if c == nil {
		g.refuse(w, r, rt, "", noCarrier(r, rt))
		return
	}
	if err := c.Check(r); err != nil {
		g.refuse(w, r, rt, c.Name(), err)
		return
	}
	if err := g.tunnels.reserve(); err != nil {
		g.refuse(w, r, rt, c.Name(), err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.opts.HandshakeTimeout)
	be, err := rt.Service.Open(ctx)
	cancel()
	if err != nil {
		g.tunnels.unreserve()
		var se *carrier.StatusError
		if !errors.As(err, &se) {
			se = carrier.Errorf(http.StatusBadGateway, "%v", err)
		}
		g.refuse(w, r, rt, c.Name(), se)
		return
	}
	tun, err := c.Accept(w, r)
	if err != nil {
		g.tunnels.unreserve()
		be.Close()
		g.log.Info("handshake failed", "route", rt.Path, "carrier", c.Name(), "client", r.RemoteAddr, "err", err)
		return
	}
	t := &tunnel{
		route:   rt.Path,
		carrier: c.Name(),
		client:  r.RemoteAddr,
		conn:    tun,
		backend: be,
		start:   time.Now(),
	}
	g.tunnels.start(t, g.run)
}

// run carries t until it ends and logs one line about it.
func (g *Gateway) run(t *tunnel) {
	st, err := t.backend.Serve(t.conn)
	level, msg := slog.LevelInfo, "tunnel closed"
	attrs := []any{
		"route", t.route, "carrier", t.carrier, "client", t.client,
		"bytes_in", st.In, "bytes_out", st.Out, "duration", time.Since(t.start).Round(time.Millisecond),
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	g.log.Log(context.Background(), level, msg, attrs...)
}

func pick(rt *route, r *http.Request) carrier.Carrier {
	for _, c := range rt.carriers {
		if c.Wants(r) {
			return c
		}
	}
	return nil
}

// noCarrier says why no carrier took r.
func noCarrier(r *http.Request, rt *route) *carrier.StatusError {
	up := http.Header{"Upgrade": {raw.Token}, "Connection": {"Upgrade"}}
	switch {
	case r.Header.Get("Upgrade") != "":
		return carrier.Errorf(http.StatusBadRequest, "unsupported Upgrade %q; this route speaks %s and websocket", r.Header.Get("Upgrade"), raw.Token)
	case r.Method == http.MethodPost:
		return carrier.Errorf(http.StatusBadRequest, "a POST on a tunnel route opens a poll session: send %s: %s", poll.CarrierHeader, poll.Name)
	case r.Method == http.MethodPut || r.Method == http.MethodDelete:
		return carrier.Errorf(http.StatusBadRequest, "%s belongs to a poll session: send its %s header", r.Method, poll.SessionHeader)
	case r.Method != http.MethodGet:
		e := carrier.Errorf(http.StatusMethodNotAllowed, "method %s is not allowed on a tunnel route; send GET with Upgrade: %s, or POST with %s: %s", r.Method, raw.Token, poll.CarrierHeader, poll.Name)
		e.Header = http.Header{"Allow": {"GET, POST"}}
		return e
	case r.Header.Get(carrier.VersionHeader) != "":
		e := carrier.Errorf(http.StatusUpgradeRequired, "the Upgrade header did not arrive (an intermediary removed it?); try another carrier")
		e.Header = up
		return e
	case raw.IsBare(r):
		e := carrier.Errorf(http.StatusUpgradeRequired, "the bare form is off on route %s; send Upgrade: %s", rt.Path, raw.Token)
		e.Header = up
		return e
	default:
		e := carrier.Errorf(http.StatusUpgradeRequired, "route %s carries a TCP stream: connect with `porthole connect URL`, or send Upgrade: %s", rt.Path, raw.Token)
		e.Header = up
		return e
	}
}

// refuse answers a request that gets no tunnel, and logs it.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, rt *route, carrierName string, err error) {
	var se *carrier.StatusError
	if !errors.As(err, &se) {
		se = carrier.Errorf(http.StatusInternalServerError, "%v", err)
	}
	level := slog.LevelDebug
	if se.Code >= 500 {
		level = slog.LevelWarn
	}
	g.log.Log(r.Context(), level, "tunnel refused", "route", rt.Path, "carrier", carrierName, "client", r.RemoteAddr, "status", se.Code, "reason", se.Reason)
	se.Write(w)
}
