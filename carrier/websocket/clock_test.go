package websocket

import (
	"io"
	"testing"
	"time"
)

// TestClock: each clock ticks until it is closed; its goroutine ends
// then, which TestMain's leak check sees.
func TestClock(t *testing.T) {
	clocks := map[string]func(time.Duration, func()) io.Closer{"startClock": startClock, "startTicker": startTicker}
	for name, start := range clocks {
		t.Run(name, func(t *testing.T) {
			ticks := make(chan struct{}, 1)
			c := start(time.Millisecond, func() {
				select {
				case ticks <- struct{}{}:
				default:
				}
			})
			defer c.Close()
			for i := range 3 {
				select {
				case <-ticks:
				case <-time.After(10 * time.Second):
					t.Fatalf("tick %d did not come", i+1)
				}
			}
		})
	}
}

// TestKeepaliveClockFollowsTunnels: the keep-alive's clock starts with a
// Server's first tunnel and stops with its last, so that a Server with no
// tunnel open holds no goroutine and no descriptor.
func TestKeepaliveClockFollowsTunnels(t *testing.T) {
	k := &keepalive{period: time.Hour}
	a, b := &conn{}, &conn{}
	k.add(a)
	k.add(b)
	if k.clock == nil {
		t.Fatal("no clock with two tunnels open")
	}
	k.remove(a)
	if k.clock == nil {
		t.Fatal("the clock stopped with a tunnel still open")
	}
	k.remove(b)
	if k.clock != nil {
		t.Fatal("the clock runs with no tunnel open")
	}
}

// TestKeepaliveTick: the clock ticks four times a period, and never
// faster than minTick: a period of a nanosecond would otherwise make a
// timerfd that never fires, and a time.Ticker that panics.
func TestKeepaliveTick(t *testing.T) {
	for _, c := range []struct{ period, tick time.Duration }{
		{30 * time.Second, 7500 * time.Millisecond},
		{100 * time.Millisecond, 25 * time.Millisecond},
		{time.Nanosecond, minTick},
	} {
		if got := (&keepalive{period: c.period}).tickEvery(); got != c.tick {
			t.Errorf("period %v: ticks every %v, want %v", c.period, got, c.tick)
		}
	}
}

// BenchmarkKeepaliveFirstTunnel: what the first tunnel of a Server, or
// each of tunnels opened one after another, costs the keep-alive: its
// clock starts and stops with it.
func BenchmarkKeepaliveFirstTunnel(b *testing.B) {
	k := &keepalive{period: time.Hour}
	c := &conn{}
	for b.Loop() {
		k.add(c)
		k.remove(c)
	}
}
