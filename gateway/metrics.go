package gateway

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/service"
)

// The gateway's Prometheus metrics, registered on Options.Metrics:
//
//	porthole_tunnels_opened_total{route,carrier}           counter
//	porthole_tunnels_open{route,carrier}                   gauge
//	porthole_tunnel_bytes_total{route,carrier,direction}   counter, direction "in" (client to service) or "out"
//	porthole_handshake_failures_total{route,reason}        counter
//	porthole_service_dial_seconds{route}                   histogram of Service.Open
//	porthole_poll_sessions{route}                          gauge, read at scrape time
//
// Labels are bounded by the configuration, never by what clients send:
// route is a route's path; a request for a path with no route counts
// under route="" (paths start with "/", so "" is no route's). carrier is
// raw, websocket or poll. reason is the refusal's HTTP status code, as
// "401" or "503", or "accept" when the carrier's handshake broke after the
// service was opened (the client went away, a WebSocket upgrade failed)
// without a status of its own.
//
// Tunnel bytes are counted when the tunnel ends: the relay counts them
// inside its copy loops, on the kernel's splice path, and a service
// reports them only when its tunnel is done (service.Backend.Serve).
// Counting them live would need a counting wrapper around the tunnel's
// connection, which hides the *net.TCPConn and loses splice, or a new
// hook through service and relay. A long tunnel's bytes thus appear at
// its end; porthole_tunnels_open shows it while it lasts.
type metrics struct {
	opened *prometheus.CounterVec
	open   *prometheus.GaugeVec
	bytes  *prometheus.CounterVec
	failed *prometheus.CounterVec
	dial   *prometheus.HistogramVec

	mu      sync.Mutex
	mounted []*route // routes served through Handler, for poll_sessions
}

// dialBuckets span a loopback dial (a few hundred microseconds) to the
// handshake timeout's default of 10 seconds.
var dialBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// newMetrics registers g's collectors on reg; nil reg means no metrics,
// and a nil *metrics, whose methods do nothing.
func newMetrics(reg prometheus.Registerer, g *Gateway) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "porthole_tunnels_opened_total",
			Help: "Tunnels opened (handshake done), by route and carrier.",
		}, []string{"route", "carrier"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "porthole_tunnels_open",
			Help: "Tunnels open now, by route and carrier.",
		}, []string{"route", "carrier"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "porthole_tunnel_bytes_total",
			Help: "Bytes carried by tunnels that have ended, by route, carrier and direction (in: client to service; out: service to client).",
		}, []string{"route", "carrier", "direction"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "porthole_handshake_failures_total",
			Help: `Requests for a tunnel that got none, by route ("" for a path with no route) and reason (the HTTP status answered, or "accept" when the carrier's handshake broke).`,
		}, []string{"route", "reason"}),
		dial: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "porthole_service_dial_seconds",
			Help:    "How long opening a route's service took (a TCP dial, say), failures included.",
			Buckets: dialBuckets,
		}, []string{"route"}),
	}
	sessions := &pollSessions{g: g, m: m, desc: prometheus.NewDesc("porthole_poll_sessions",
		"Poll sessions held, by route: open tunnels, and ended ones whose client has not collected the end yet.",
		[]string{"route"}, nil)}
	cs := []prometheus.Collector{m.opened, m.open, m.bytes, m.failed, m.dial, sessions}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, err
		}
	}
	return m, nil
}

// tunnelOpened counts a tunnel whose relay starts.
func (m *metrics) tunnelOpened(route, carrier string) {
	if m == nil {
		return
	}
	m.opened.WithLabelValues(route, carrier).Inc()
	m.open.WithLabelValues(route, carrier).Inc()
}

// tunnelClosed counts a tunnel whose relay has ended, with its bytes.
func (m *metrics) tunnelClosed(route, carrier string, st service.Stats) {
	if m == nil {
		return
	}
	m.open.WithLabelValues(route, carrier).Dec()
	m.bytes.WithLabelValues(route, carrier, "in").Add(float64(st.In))
	m.bytes.WithLabelValues(route, carrier, "out").Add(float64(st.Out))
}

// refused counts a request on route answered with status code instead of
// a tunnel.
func (m *metrics) refused(route string, code int) {
	if m == nil {
		return
	}
	m.failed.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

// acceptFailed counts a carrier handshake on route that failed with err
// after the service was opened: by the status the carrier answered, or
// as "accept" when it had none to give.
func (m *metrics) acceptFailed(route string, err error) {
	if m == nil {
		return
	}
	if se, ok := errors.AsType[*carrier.StatusError](err); ok {
		m.refused(route, se.Code)
		return
	}
	m.failed.WithLabelValues(route, "accept").Inc()
}

// dialed records how long opening route's service took since start.
func (m *metrics) dialed(route string, start time.Time) {
	if m == nil {
		return
	}
	m.dial.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

// mount adds a route served through Gateway.Handler to those whose poll
// sessions are counted.
func (m *metrics) mount(rt *route) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mounted = append(m.mounted, rt)
}

// pollSessions reports each route's poll sessions when scraped: the routes
// of the current table (they change with SetRoutes), those a reload
// removed while sessions go on, and those mounted through Handler.
type pollSessions struct {
	g    *Gateway
	m    *metrics
	desc *prometheus.Desc
}

func (c *pollSessions) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *pollSessions) Collect(ch chan<- prometheus.Metric) {
	held := make(map[string]int)
	add := func(path string, ps *poll.Server) { held[path] += ps.Sessions() }
	t := c.g.table.Load()
	for path, rt := range t.routes {
		add(path, rt.state.poll)
	}
	for path, ps := range t.retired {
		if ps.Sessions() > 0 { // else the route is gone whole
			add(path, ps)
		}
	}
	c.m.mu.Lock()
	for _, rt := range c.m.mounted {
		add(rt.Path, rt.state.poll)
	}
	c.m.mu.Unlock()
	for path, n := range held {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), path)
	}
}
