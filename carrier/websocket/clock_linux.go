package websocket

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// startClock calls tick every interval from a goroutine of its own until
// the returned Closer is closed; a tick under way finishes. It is a
// timerfd that the goroutine reads through the runtime's poller, so that
// it is no runtime timer (see keepalive); where the kernel will not make
// one, a time.Ticker.
func startClock(interval time.Duration, tick func()) io.Closer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return startTicker(interval, tick)
	}
	every := unix.NsecToTimespec(int64(interval))
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: every, Value: every}, nil); err != nil {
		unix.Close(fd)
		return startTicker(interval, tick)
	}
	f := os.NewFile(uintptr(fd), "keep-alive clock")
	go func() {
		var expirations [8]byte
		for {
			if _, err := f.Read(expirations[:]); err != nil {
				return // closed
			}
			tick()
		}
	}()
	return f
}
