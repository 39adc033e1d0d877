package websocket

import (
	"io"
	"time"
)

// tickerClock is a clock on a time.Ticker, a runtime timer: startClock's
// fallback.
type tickerClock struct {
	ticker *time.Ticker
	done   chan struct{}
}

// startTicker calls tick every interval from a goroutine of its own until
// the returned Closer is closed.
func startTicker(interval time.Duration, tick func()) io.Closer {
	c := &tickerClock{ticker: time.NewTicker(interval), done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-c.ticker.C:
				tick()
			case <-c.done:
				return
			}
		}
	}()
	return c
}

// Close stops the clock; a tick under way finishes.
func (c *tickerClock) Close() error {
	c.ticker.Stop()
	close(c.done)
	return nil
}
