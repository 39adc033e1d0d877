package gateway

import (
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/poll"
)

// Limits caps a route's tunnels, beyond the gateway's own cap. Zero fields
// mean no limit. A client is an IP address as the gateway sees it: behind a
// reverse proxy, every client is the proxy's address.
type Limits struct {
	// MaxTunnels caps the route's open tunnels.
	MaxTunnels int
	// MaxTunnelsPerClient caps the route's open tunnels from one client.
	MaxTunnelsPerClient int
	// RatePerClient caps the tunnels one client opens per second on the
	// route, with bursts of up to max(1, RatePerClient).
	RatePerClient float64
}

// clientsKept bounds the per-client records a route keeps: the oldest
// idle ones go first, so a flood of addresses cannot grow memory.
const clientsKept = 10_000

// routeState is what a route keeps across reloads: its counts and rate
// limiters, so a changed route goes on from where it was.
type routeState struct {
	poll *poll.Server // its sessions outlive a reload of the route

	mu      sync.Mutex
	open    int
	clients map[netip.Addr]*clientState
}

type clientState struct {
	open    int
	limiter *rate.Limiter
	seen    time.Time
}

// reserve takes a place for a tunnel from client on the route, or says
// why not: 429 with Retry-After.
func (s *routeState) reserve(client netip.Addr, l Limits, path string) *carrier.StatusError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.MaxTunnels > 0 && s.open >= l.MaxTunnels {
		return tooMany(time.Second, "route %s is at its cap of %d open tunnels; retry later", path, l.MaxTunnels)
	}
	c := s.client(client)
	if l.MaxTunnelsPerClient > 0 && c.open >= l.MaxTunnelsPerClient {
		return tooMany(time.Second, "route %s allows %d open tunnels from one client address; close one first", path, l.MaxTunnelsPerClient)
	}
	if l.RatePerClient > 0 {
		if c.limiter == nil || c.limiter.Limit() != rate.Limit(l.RatePerClient) {
			c.limiter = rate.NewLimiter(rate.Limit(l.RatePerClient), max(1, int(l.RatePerClient)))
		}
		r := c.limiter.Reserve()
		if d := r.Delay(); d > 0 {
			r.Cancel()
			return tooMany(d, "route %s allows %g new tunnels per second from one client address", path, l.RatePerClient)
		}
	}
	s.open++
	c.open++
	return nil
}

// release gives back a place reserve took.
func (s *routeState) release(client netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if c := s.clients[client]; c != nil {
		c.open--
		c.seen = time.Now()
	}
}

// client returns client's record, making room for it when the route keeps
// too many. The caller holds s.mu.
func (s *routeState) client(addr netip.Addr) *clientState {
	if c := s.clients[addr]; c != nil {
		c.seen = time.Now()
		return c
	}
	if s.clients == nil {
		s.clients = make(map[netip.Addr]*clientState)
	}
	if len(s.clients) >= clientsKept {
		s.forgetIdle()
	}
	c := &clientState{seen: time.Now()}
	s.clients[addr] = c
	return c
}

// forgetIdle drops the older half of the records of clients with no open
// tunnel, so that the map keeps room. Forgetting a client resets its rate
// limiter: a full bucket again.
func (s *routeState) forgetIdle() {
	var idle []time.Time
	for _, c := range s.clients {
		if c.open == 0 {
			idle = append(idle, c.seen)
		}
	}
	if len(idle) == 0 {
		return
	}
	slices.SortFunc(idle, time.Time.Compare)
	cut := idle[len(idle)/2]
	for a, c := range s.clients {
		if c.open == 0 && !c.seen.After(cut) {
			delete(s.clients, a)
		}
	}
}

// tooMany is a 429 refusal with Retry-After in whole seconds.
func tooMany(after time.Duration, format string, args ...any) *carrier.StatusError {
	e := carrier.Errorf(http.StatusTooManyRequests, format, args...)
	secs := int(math.Ceil(after.Seconds()))
	e.Header = http.Header{"Retry-After": {strconv.Itoa(max(1, secs))}}
	return e
}

// Failed credentials from one address are slowed down: after
// failAllowance failures within failWindow, its requests on guarded
// routes get 429 until the window ends.
const (
	failAllowance = 5
	failWindow    = time.Minute
)

// failures counts refused credentials per client address.
type failures struct {
	mu sync.Mutex
	m  map[netip.Addr]*failRecord
}

type failRecord struct {
	n     int
	start time.Time
}

// blocked reports whether addr has failed too often lately, with 429.
func (f *failures) blocked(addr netip.Addr) *carrier.StatusError {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.m[addr]
	if r == nil || r.n < failAllowance {
		return nil
	}
	left := failWindow - time.Since(r.start)
	if left <= 0 {
		delete(f.m, addr)
		return nil
	}
	return tooMany(left, "too many refused credentials from this address; wait %v", left.Round(time.Second))
}

// add counts a refused credential from addr.
func (f *failures) add(addr netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.m == nil {
		f.m = make(map[netip.Addr]*failRecord)
	}
	if len(f.m) >= clientsKept {
		for a, r := range f.m {
			if now.Sub(r.start) > failWindow {
				delete(f.m, a)
			}
		}
		if len(f.m) >= clientsKept {
			clear(f.m) // under a flood of addresses, forget rather than grow
		}
	}
	r := f.m[addr]
	if r == nil || now.Sub(r.start) > failWindow {
		r = &failRecord{start: now}
		f.m[addr] = r
	}
	r.n++
}

// clientAddr is r's client IP address; the zero Addr when it has none.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
