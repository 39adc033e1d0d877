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
