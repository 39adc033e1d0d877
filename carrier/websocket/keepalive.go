package websocket

import (
	"io"
	"sync"
	"time"
)

// keepalive pings the tunnels of one Server every period, so that
// intermediaries with idle timeouts keep them, and cuts a tunnel whose
// peer has sent nothing, not even a pong, for two periods.
//
// One clock serves all the Server's tunnels, and it is not a runtime
// timer: while any runtime timer is pending, the Go runtime's poller waits
// with a timeout, and a timer per tunnel cost every wait of every tunnel a
// kernel timer, about 5 µs a round trip on the machine of
// docs/benchmarks.md ("WebSocket round trip"). The clock (startClock)
// runs only while the Server has tunnels open: starting and stopping it
// costs about 5.5 µs (BenchmarkKeepaliveFirstTunnel), which a Server's
// first tunnel pays, and each of tunnels that never overlap.
type keepalive struct {
	period time.Duration

	mu    sync.Mutex
	conns map[*conn]struct{}
	clock io.Closer // nil while no tunnel is open
}

// ticksPerPeriod is how often in a period the clock looks at the tunnels:
// a ping goes out at most a quarter of a period late. The clock ticks no
// more often than every minTick, whatever the period.
const (
	ticksPerPeriod = 4
	minTick        = time.Millisecond
)

// tickEvery is the clock's interval.
func (k *keepalive) tickEvery() time.Duration {
	return max(k.period/ticksPerPeriod, minTick)
}

// add starts keeping c alive.
func (k *keepalive) add(c *conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conns == nil {
		k.conns = make(map[*conn]struct{})
	}
	k.conns[c] = struct{}{}
	if k.clock == nil {
		k.clock = startClock(k.tickEvery(), k.tick)
	}
}

// remove stops keeping c alive.
func (k *keepalive) remove(c *conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropLocked(c)
}

// dropLocked forgets c, and stops the clock with the last tunnel.
func (k *keepalive) dropLocked(c *conn) {
	delete(k.conns, c)
	if len(k.conns) == 0 && k.clock != nil {
		k.clock.Close()
		k.clock = nil
	}
}

// tick does each tunnel's keep-alive work, on the clock's goroutine.
func (k *keepalive) tick() {
	now := sinceEpoch()
	k.mu.Lock()
	defer k.mu.Unlock()
	for c := range k.conns {
		if !c.keepAlive(now, k.period) {
			k.dropLocked(c)
		}
	}
}

// epoch is the monotonic reference of the tunnels' times (sinceEpoch).
var epoch = time.Now()

func sinceEpoch() time.Duration { return time.Since(epoch) }
