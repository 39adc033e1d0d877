package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/carrier/raw"
	"github.com/porthole/porthole/carrier/websocket"
	"github.com/porthole/porthole/web"
)

// routeTable is the gateway's routes at one time; SetRoutes replaces it
// whole, so a request sees one table from start to end.
type routeTable struct {
	routes map[string]*route
	page   http.Handler
	// retired holds the poll carriers of routes a reload removed while
	// they had sessions: those sessions go on until they end.
	retired map[string]*poll.Server
	// clientCerts is set when a route verifies client certificates.
	clientCerts bool
}

// Carriers names the carriers a route can allow (Route.Carriers), in the
// order they are tried on a request.
var Carriers = []string{raw.Name, websocket.Name, poll.Name}

// CheckPath says what is wrong with a route path, or returns nil.
func CheckPath(path string) error {
	switch {
	case !strings.HasPrefix(path, "/") || path == "/":
		return fmt.Errorf("route path %q must start with / and name a service, as in /echo", path)
	case strings.ContainsAny(path, "?#"):
		return fmt.Errorf("route path %q holds a query or fragment, which no request path matches", path)
	}
	return nil
}

// CheckCarrier says what is wrong with a carrier's name in
// Route.Carriers, or returns nil.
func CheckCarrier(name string) error {
	if !slices.Contains(Carriers, name) {
		return fmt.Errorf("unknown carrier %q; use %s", name, strings.Join(Carriers, ", "))
	}
	return nil
}

// SetRoutes replaces the gateway's routes, as a configuration reload does.
// New and changed routes take effect for the requests that follow; open
// tunnels are untouched, poll sessions included, even on a route that is
// gone. A route keeps its counts and rate limits across the change. On an
// error (a bad route, a path given twice) nothing changes.
func (g *Gateway) SetRoutes(routes []Route) error {
	g.reload.Lock()
	defer g.reload.Unlock()
	t := &routeTable{routes: make(map[string]*route), retired: make(map[string]*poll.Server)}
	var pageRoutes []web.Route
	for _, r := range routes {
		if _, dup := t.routes[r.Path]; dup {
			return fmt.Errorf("route %s is given twice", r.Path)
		}
		state := g.states[r.Path]
		if state == nil {
			state = &routeState{}
		}
		rt, err := newRoute(r, g.opts, state)
		if err != nil {
			return err
		}
		t.routes[r.Path] = rt
		t.clientCerts = t.clientCerts || (r.Auth != nil && r.Auth.ClientCAs != nil)
		pageRoutes = append(pageRoutes, web.Route{Path: r.Path, Target: r.Service.String(), Bare: r.Bare, Token: r.Auth != nil && len(r.Auth.Tokens) > 0})
	}
	t.page = web.Index(pageRoutes)
	states := make(map[string]*routeState, len(t.routes))
	for path, rt := range t.routes {
		states[path] = rt.state
	}
	for path, st := range g.states {
		if _, kept := states[path]; !kept && st.poll.Sessions() > 0 {
			t.retired[path] = st.poll
			states[path] = st
		}
	}
	g.states = states
	g.table.Store(t)
	return nil
}

// newRoute checks r and builds its carriers; state is the route's own,
// kept across reloads, and gets its poll carrier here the first time.
func newRoute(r Route, o Options, state *routeState) (*route, error) {
	if err := CheckPath(r.Path); err != nil {
		return nil, err
	}
	if r.Service == nil {
		return nil, fmt.Errorf("route %s has no service", r.Path)
	}
	for _, name := range r.Carriers {
		if err := CheckCarrier(name); err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Path, err)
		}
	}
	if r.Auth != nil && len(r.Auth.Tokens) == 0 && r.Auth.ClientCAs == nil {
		return nil, fmt.Errorf("route %s: its auth allows no token and no client CA, so nobody could use it; leave auth out for an open route", r.Path)
	}
	if state.poll == nil {
		state.poll = &poll.Server{
			LongPoll:    o.LongPoll,
			IdleTimeout: o.SessionIdleTimeout,
			BufferBytes: o.SessionBufferBytes,
			MaxSessions: o.MaxTunnels,
		}
	}
	rt := &route{Route: r, state: state}
	for _, c := range carriersFor(r, o, state.poll) {
		if len(r.Carriers) == 0 || slices.Contains(r.Carriers, c.Name()) {
			rt.carriers = append(rt.carriers, c)
		} else {
			rt.refused = append(rt.refused, c)
		}
	}
	return rt, nil
}

func carriersFor(r Route, o Options, ps *poll.Server) []carrier.Carrier {
	return []carrier.Carrier{
		&raw.Server{Bare: r.Bare, WriteTimeout: o.HandshakeTimeout},
		&websocket.Server{
			AllowedOrigins:   r.Origins,
			ReadLimit:        o.MaxMessageBytes,
			PingInterval:     o.PingInterval,
			HandshakeTimeout: o.HandshakeTimeout,
		},
		ps,
	}
}

// allowed names the route's carriers.
func (rt *route) allowed() []string {
	names := make([]string, len(rt.carriers))
	for i, c := range rt.carriers {
		names[i] = c.Name()
	}
	return names
}
