package gateway

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/service"
)

// tunnel is one open tunnel as the gateway tracks it.
type tunnel struct {
	route, carrier, client string
	conn                   net.Conn
	backend                service.Backend
	start                  time.Time
	done                   func()        // runs when the tunnel has ended
	cut                    atomic.Bool   // Shutdown closed it at its deadline
	stop                   chan struct{} // closed with cut
}

// end says why t ended, for its log line, from what its relay returned:
// "shutdown" when Shutdown closed it at its deadline, "eof" when both
// directions finished cleanly, else "error" (the line carries the error).
// The relay joins the errors of both directions without saying whose
// each was, so a client's failure is not told from the service's.
func (t *tunnel) end(err error) string {
	switch {
	case t.cut.Load():
		return "shutdown"
	case err == nil:
		return "eof"
	default:
		return "error"
	}
}

// registry owns the gateway's tunnels: http.Server.Shutdown does not track
// hijacked connections, so the gateway counts them itself, caps them, and
// drains or closes them on shutdown.
type registry struct {
	mu       sync.Mutex
	max      int
	n        int // reserved (in handshake) plus open
	open     map[*tunnel]struct{}
	draining bool
	changed  chan struct{} // closed and replaced whenever n drops
}

func (r *registry) init(max int) {
	r.max = max
	r.open = make(map[*tunnel]struct{})
	r.changed = make(chan struct{})
}

// reserve takes a place for a tunnel about to be opened, or says why not.
func (r *registry) reserve() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		return carrier.Errorf(http.StatusServiceUnavailable, "gateway is shutting down; retry on another gateway or later")
	}
	if r.n >= r.max {
		return carrier.Errorf(http.StatusServiceUnavailable, "gateway is at its cap of %d open tunnels; retry later", r.max)
	}
	r.n++
	return nil
}

// unreserve gives back a place whose tunnel never opened.
func (r *registry) unreserve() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.release()
}

func (r *registry) release() {
	r.n--
	close(r.changed)
	r.changed = make(chan struct{})
}

// start runs t in its own goroutine on a reserved place, tracking it until
// run returns.
func (r *registry) start(t *tunnel, run func(*tunnel)) {
	r.mu.Lock()
	r.open[t] = struct{}{}
	r.mu.Unlock()
	go func() {
		run(t)
		t.done()
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.open, t)
		r.release()
	}()
}

// count returns the number of open and opening tunnels.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// drain refuses new tunnels and waits for the open ones to end. When ctx
// ends first it closes those still open, waits for them to wind up, and
// returns ctx's error.
func (r *registry) drain(ctx context.Context) error {
	r.mu.Lock()
	r.draining = true
	r.mu.Unlock()
	if r.wait(ctx.Done()) {
		return nil
	}
	r.mu.Lock()
	for t := range r.open {
		t.cut.Store(true)
		close(t.stop)
		// A Close may wait (a Close frame or a TLS close_notify to a
		// peer that reads nothing, a WebSocket peer's last bytes): each
		// on its own, so that slow peers hold the shutdown up only as
		// long as the slowest.
		go t.conn.Close()
	}
	r.mu.Unlock()
	r.wait(nil)
	return ctx.Err()
}

// wait blocks until no tunnel is left (true) or stop is closed (false).
func (r *registry) wait(stop <-chan struct{}) bool {
	for {
		r.mu.Lock()
		n, ch := r.n, r.changed
		r.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-ch:
		case <-stop:
			return false
		}
	}
}
