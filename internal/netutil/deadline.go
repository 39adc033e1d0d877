package netutil

import (
	"crypto/tls"
	"net"
	"os"
	"sync"
	"time"
)

// maxChunk is how much of one Write a DeadlineConn hands to the underlying
// connection at a time: one TLS record's worth.
const maxChunk = 16 << 10

// DeadlineConn keeps a connection usable after a write deadline passes.
//
// A *tls.Conn whose Write times out is corrupt for good: a record may be
// half sent, and every later Write fails. DeadlineConn never sets a write
// deadline on the underlying connection. Its Write hands the bytes, copied,
// to a background write one chunk at a time, and the write deadline bounds
// only the caller's wait: when it passes, Write returns a timeout, and the
// chunk already handed over still goes out, as bytes in a kernel send
// buffer would. An error of such a chunk is returned by the next Write.
// Reads, read deadlines and Close go straight to the underlying connection.
type DeadlineConn struct {
	net.Conn
	wmu sync.Mutex // one Write or CloseWrite at a time; guards buf
	buf []byte     // the chunk being written; owned by the background write while busy

	mu       sync.Mutex
	deadline time.Time     // write deadline
	changed  chan struct{} // closed and replaced when deadline changes
	busy     chan struct{} // closed when the background write ends; nil if none
	err      error         // the first error of a background write
}

// SafeDeadlines returns c wrapped in a DeadlineConn when a passed write
// deadline would break it (a TLS connection, possibly behind a PrefixConn),
// and c itself otherwise.
func SafeDeadlines(c net.Conn) net.Conn {
	if _, inner := Split(c); isTLS(inner) {
		return &DeadlineConn{Conn: c, changed: make(chan struct{})}
	}
	return c
}

func isTLS(c net.Conn) bool {
	_, ok := c.(*tls.Conn)
	return ok
}

// Write writes p, returning early with a timeout when the write deadline
// passes; see DeadlineConn.
func (c *DeadlineConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := 0
	for {
		if err := c.wait(); err != nil {
			return n, err
		}
		if n == len(p) {
			return n, nil
		}
		chunk := p[n:min(len(p), n+maxChunk)]
		c.buf = append(c.buf[:0], chunk...)
		c.start(c.buf)
		n += len(chunk)
	}
}

// start writes b in the background.
func (c *DeadlineConn) start(b []byte) {
	done := make(chan struct{})
	c.mu.Lock()
	c.busy = done
	c.mu.Unlock()
	go func() {
		_, err := c.Conn.Write(b)
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.err = err
		}
		c.busy = nil
		c.mu.Unlock()
		close(done)
	}()
}

// wait blocks until no background write is running, and returns its error,
// or a timeout once the write deadline has passed.
func (c *DeadlineConn) wait() error {
	for {
		c.mu.Lock()
		busy, deadline, changed, err := c.busy, c.deadline, c.changed, c.err
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return c.timeout()
		}
		if busy == nil {
			return nil
		}
		var expired <-chan time.Time
		var timer *time.Timer
		if !deadline.IsZero() {
			timer = time.NewTimer(time.Until(deadline))
			expired = timer.C
		}
		select {
		case <-busy:
		case <-changed:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (c *DeadlineConn) timeout() error {
	return &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
}

// SetDeadline sets the read deadline on the underlying connection and the
// write deadline here.
func (c *DeadlineConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline for Write's wait; pending Writes see
// the new deadline at once.
func (c *DeadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// CloseWrite waits for the bytes already handed over, then shuts down the
// writing side of the underlying connection.
func (c *DeadlineConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	busy := c.busy
	c.mu.Unlock()
	if busy != nil {
		<-busy
	}
	return CloseWrite(c.Conn)
}
