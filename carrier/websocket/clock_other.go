//go:build !linux

package websocket

import (
	"io"
	"time"
)

// startClock calls tick every interval from a goroutine of its own until
// the returned Closer is closed: a time.Ticker here; on Linux a timerfd,
// which is no runtime timer (see keepalive).
func startClock(interval time.Duration, tick func()) io.Closer {
	return startTicker(interval, tick)
}
