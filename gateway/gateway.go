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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/carrier/raw"
	"github.com/porthole/porthole/service"
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
	// Carriers lists the carriers allowed on the route: "raw" (with the
	// bare form when Bare is set), "websocket", "poll". Empty means all.
	// A request for another gets 403 naming the allowed ones.
	Carriers []string
	// Auth says who may open tunnels on the route; nil means anyone.
	Auth *Auth
	// Limits caps the route's tunnels, per route and per client address.
	Limits Limits
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
	// closes the tunnel with 1009. Zero means 1 MiB. Porthole's client
	// sends messages of up to websocket.MaxMessageSent (256 KiB), so a
	// smaller cap shuts it out.
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
	// Metrics is where the gateway registers its Prometheus collectors:
	// porthole_tunnels_opened_total, porthole_tunnels_open,
	// porthole_tunnel_bytes_total (added as each tunnel ends),
	// porthole_handshake_failures_total, porthole_service_dial_seconds
	// and porthole_poll_sessions. nil means no metrics, at no cost.
	// Gateways that share a registry each register through
	// prometheus.WrapRegistererWith, with a label of their own.
	Metrics prometheus.Registerer
}

// Gateway serves routes over HTTP and HTTPS. Create one with New.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	table   atomic.Pointer[routeTable]
	tunnels registry
	fails   failures
	metrics *metrics // nil without Options.Metrics

	reload sync.Mutex             // serializes SetRoutes
	states map[string]*routeState // by path, kept across reloads; under reload

	mu       sync.Mutex
	servers  map[*http.Server]struct{}
	shutdown bool
}

type route struct {
	Route
	carriers []carrier.Carrier // the allowed ones
	refused  []carrier.Carrier // the others, to refuse by name
	state    *routeState
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
		states:  make(map[string]*routeState),
		servers: make(map[*http.Server]struct{}),
	}
	g.tunnels.init(o.MaxTunnels)
	if err := g.SetRoutes(o.Routes); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Metrics, g)
	if err != nil {
		return nil, fmt.Errorf("registering the gateway's metrics: %w", err)
	}
	g.metrics = m
	return g, nil
}

// ServeHTTP answers the page at "/" and tunnels on the routes; any other
// path gets 404.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.table.Load()
	if rt, ok := t.routes[r.URL.Path]; ok {
		g.serveRoute(w, r, rt)
		return
	}
	if ps, ok := t.retired[r.URL.Path]; ok && ps.InSession(r) {
		ps.ServeSession(w, r) // a poll session of a route a reload removed
		return
	}
	if r.URL.Path == "/" {
		t.page.ServeHTTP(w, r)
		return
	}
	g.metrics.refused("", http.StatusNotFound) // never the path: clients choose it
	carrier.Errorf(http.StatusNotFound, "no route %s on this gateway", r.URL.Path).Write(w)
}

// Handler returns a handler that serves every request as a tunnel to rt,
// whatever its path: the entry point for handlers mounted on another mux,
// such as porthole.Listener. Its tunnels count toward the gateway's cap and
// are drained by Shutdown.
func (g *Gateway) Handler(rt Route) (http.Handler, error) {
	route, err := newRoute(rt, g.opts, &routeState{})
	if err != nil {
		return nil, err
	}
	g.metrics.mount(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serveRoute(w, r, route)
	}), nil
}

func (g *Gateway) serveRoute(w http.ResponseWriter, r *http.Request, rt *route) {
	if ps := rt.state.poll; ps != nil && ps.InSession(r) {
		ps.ServeSession(w, r) // the session's token is its credential
		return
	}
	client := clientAddr(r)
	if rt.Auth != nil {
		if e := g.fails.blocked(client); e != nil {
			g.refuse(w, r, rt, "", e)
			return
		}
		if e, failed := rt.Auth.check(r, rt.Path); e != nil {
			if failed {
				g.fails.add(client)
			}
			g.refuse(w, r, rt, "", e)
			return
		}
	}
	c := pick(rt.carriers, r)
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
	if err := rt.state.reserve(client, rt.Limits, rt.Path); err != nil {
		g.tunnels.unreserve()
		g.refuse(w, r, rt, c.Name(), err)
		return
	}
	unreserve := func() {
		rt.state.release(client)
		g.tunnels.unreserve()
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.opts.HandshakeTimeout)
	opening := time.Now()
	be, err := rt.Service.Open(ctx)
	g.metrics.dialed(rt.Path, opening)
	cancel()
	if err != nil {
		unreserve()
		var se *carrier.StatusError
		if !errors.As(err, &se) {
			se = carrier.Errorf(http.StatusBadGateway, "%v", err)
		}
		g.refuse(w, r, rt, c.Name(), se)
		return
	}
	tun, err := c.Accept(w, r)
	if err != nil {
		unreserve()
		be.Close()
		g.metrics.acceptFailed(rt.Path, err)
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
		stop:    make(chan struct{}),
		done:    func() { rt.state.release(client) },
	}
	g.tunnels.start(t, g.run)
}

// A lingerer is a tunnel connection whose client may still collect bytes
// after the relay has closed it (a poll session): Finished is closed once
// the client is done with it.
type lingerer interface{ Finished() <-chan struct{} }

// run carries t until it ends and logs one line about it.
func (g *Gateway) run(t *tunnel) {
	g.metrics.tunnelOpened(t.route, t.carrier)
	st, err := t.backend.Serve(t.conn)
	// A poll session outlives its relay until the client has collected
	// the end: it stays a tunnel until then, or until Shutdown cuts it.
	if l, ok := t.conn.(lingerer); ok {
		select {
		case <-l.Finished():
		case <-t.stop:
		}
	}
	g.metrics.tunnelClosed(t.route, t.carrier, st)
	level, msg := slog.LevelInfo, "tunnel closed"
	attrs := []any{
		"route", t.route, "carrier", t.carrier, "client", t.client,
		"bytes_in", st.In, "bytes_out", st.Out, "duration", time.Since(t.start).Round(time.Millisecond),
		"end", t.end(err),
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	g.log.Log(context.Background(), level, msg, attrs...)
}

func pick(carriers []carrier.Carrier, r *http.Request) carrier.Carrier {
	for _, c := range carriers {
		if c.Wants(r) {
			return c
		}
	}
	return nil
}

// noCarrier says why no carrier took r.
func noCarrier(r *http.Request, rt *route) *carrier.StatusError {
	if c := pick(rt.refused, r); c != nil {
		allowed := strings.Join(rt.allowed(), ", ")
		e := carrier.Errorf(http.StatusForbidden, "carrier %s is not allowed on route %s; it takes %s", c.Name(), rt.Path, allowed)
		e.Header = http.Header{carrier.CarriersHeader: {allowed}}
		return e
	}
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
	g.metrics.refused(rt.Path, se.Code)
	se.Write(w)
}
