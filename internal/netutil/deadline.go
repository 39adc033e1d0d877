package netutil

import (
	"crypto/tls"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole/porthole/internal/bufpool"
)

// How much one background read or write moves at a time. A write's chunk
// is a handoff to a goroutine: a Large buffer (256 KiB) makes it rare
// beside the write (one WebSocket message, sixteen TLS records). A chunk's
// buffer is lent (bufpool) only while a Write runs; ReadFrom reads its
// source into a Small one until a read fills it, as that buffer waits for
// the source. The read buffer is the connection's own, and reads return
// what has arrived, so it stays smaller.
const (
	writeChunk = bufpool.Large
	readChunk  = 64 << 10
)

// readBuffers lends the buffers of background reads.
var readBuffers = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// Fragile is implemented by connections that a deadline passing mid-read or
// mid-write breaks for good, such as a WebSocket whose framing is left
// half read. SafeDeadlines guards both directions of such a connection.
type Fragile interface {
	net.Conn
	FragileDeadlines()
}

// DeadlineConn keeps a connection usable after a deadline passes.
//
// A *tls.Conn whose Write times out is corrupt for good: a record may be
// half sent, and every later Write fails; a WebSocket is broken by a read
// timeout too. DeadlineConn never sets a deadline on the underlying
// connection for a guarded direction. A guarded Write hands the bytes,
// copied, to a background write one chunk at a time; a guarded Read waits
// for a background read into a buffer of its own. The deadline bounds only
// the caller's wait: when it passes, the call returns a timeout, and the
// background operation completes later, its bytes kept (written, as in a
// kernel send buffer, or buffered for the next Read). An error of a
// background operation is returned by the next call. Close goes straight
// to the underlying connection, which ends any background operation.
// WriteTo and ReadFrom, which io.Copy and the relay call, do the same
// without copying the bytes once more between buffers.
type DeadlineConn struct {
	net.Conn
	w     guard
	wmu   sync.Mutex // one Write or CloseWrite at a time; guards wbuf
	wbuf  *[]byte    // the chunk buffer (takeWriteBuffer); owned by the background write while busy
	r     *guard     // nil: reads and read deadlines go straight through
	rmu   sync.Mutex // one guarded Read at a time
	rdata []byte     // bytes read in the background, not yet returned
	rbuf  *[]byte    // the background read's buffer, reused once rdata is spent

	closed atomic.Bool
}

// Close closes the underlying connection, which ends any background
// operation; later calls get net.ErrClosed, whatever those operations
// ended with.
func (c *DeadlineConn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	return c.Conn.Close()
}

// opError reports err of a read or write as the net package would.
func (c *DeadlineConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// timedOut is what guard.wait returns when the deadline has passed; the
// caller wraps it as a net.OpError, so no error is built on calls that do
// not time out.
var timedOut = os.ErrDeadlineExceeded

// waitError turns guard.wait's result into what Read or Write returns.
func (c *DeadlineConn) waitError(op string, err error) error {
	if err == timedOut {
		return c.opError(op, err)
	}
	return err
}

// guard is one direction's deadline and background operation.
type guard struct {
	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{} // closed and replaced when deadline changes
	busy     chan struct{} // closed when the background operation ends; nil if none
	err      error         // the first error of a background operation
}

func newGuard() guard { return guard{changed: make(chan struct{})} }

// SafeDeadlines returns c wrapped in a DeadlineConn when a deadline could
// break it: writes are guarded for a TLS connection (possibly behind a
// PrefixConn), reads and writes for a Fragile one. Any other c is returned
// as it is.
func SafeDeadlines(c net.Conn) net.Conn {
	if _, ok := c.(Fragile); ok {
		r := newGuard()
		dc := &DeadlineConn{Conn: c, w: newGuard(), r: &r}
		dc.readAhead()
		return dc
	}
	if _, inner := Split(c); isTLS(inner) {
		return &DeadlineConn{Conn: c, w: newGuard()}
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
		if c.closed.Load() {
			return n, c.opError("write", net.ErrClosed)
		}
		if err := c.w.wait(); err != nil {
			// After a timeout the chunk is still being written, from
			// c.wbuf, which the next Write takes back.
			return n, c.waitError("write", err)
		}
		if n == len(p) {
			c.releaseWriteBuffer()
			return n, nil
		}
		c.takeWriteBuffer(writeChunk)
		m := copy(*c.wbuf, p[n:])
		buf := (*c.wbuf)[:m]
		c.w.start(func() error {
			_, err := c.Conn.Write(buf)
			return err
		})
		n += m
	}
}

// Read reads into p; for a guarded connection it returns early with a
// timeout when the read deadline passes, see DeadlineConn, and it keeps
// one read outstanding in the background (readAhead).
func (c *DeadlineConn) Read(p []byte) (int, error) {
	if c.r == nil {
		return c.Conn.Read(p)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.closed.Load() {
			return 0, c.opError("read", net.ErrClosed)
		}
		// Wait for the background read, then take its bytes before its
		// error or a timeout, and before a new read could replace them.
		err := c.waitError("read", c.r.wait())
		c.r.mu.Lock()
		n := copy(p, c.rdata)
		c.rdata = c.rdata[n:]
		spent := len(c.rdata) == 0
		c.r.mu.Unlock()
		if n > 0 {
			if spent && err == nil {
				c.readAhead()
			}
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if len(p) == 0 {
			return 0, nil
		}
		c.readAhead()
	}
}

// readAhead starts the next background read, into the buffer the last one
// used (its bytes are all taken). A guarded connection keeps one read
// outstanding whether or not its user is reading, so a WebSocket peer's
// pings are answered while the user is idle; at most one chunk is read
// ahead, so the peer's flow control still holds.
func (c *DeadlineConn) readAhead() {
	if c.rbuf == nil {
		c.rbuf = readBuffers.Get().(*[]byte)
	}
	buf := *c.rbuf
	c.r.start(func() error {
		n, err := c.Conn.Read(buf)
		c.r.mu.Lock()
		c.rdata = buf[:n]
		c.r.mu.Unlock()
		return err
	})
}

// start runs op in the background; its error becomes the guard's error.
func (g *guard) start(op func() error) {
	done := make(chan struct{})
	g.mu.Lock()
	g.busy = done
	g.mu.Unlock()
	go func() {
		err := op()
		g.mu.Lock()
		if err != nil && g.err == nil {
			g.err = err
		}
		g.busy = nil
		g.mu.Unlock()
		close(done)
	}()
}

// wait blocks until no background operation runs, and returns its error,
// or timedOut once the deadline has passed.
func (g *guard) wait() error {
	for {
		g.mu.Lock()
		busy, deadline, changed, err := g.busy, g.deadline, g.changed, g.err
		g.mu.Unlock()
		if busy == nil && err != nil {
			return err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return timedOut
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

// drain waits for the background operation, whatever the deadline, and
// returns the guard's error.
func (g *guard) drain() error {
	g.mu.Lock()
	busy := g.busy
	g.mu.Unlock()
	if busy != nil {
		<-busy
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *guard) setDeadline(t time.Time) {
	g.mu.Lock()
	g.deadline = t
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

// SetDeadline sets both deadlines; see SetReadDeadline and SetWriteDeadline.
func (c *DeadlineConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline for Write's wait; pending Writes see
// the new deadline at once.
func (c *DeadlineConn) SetWriteDeadline(t time.Time) error {
	c.w.setDeadline(t)
	return nil
}

// SetReadDeadline sets the deadline for a guarded Read's wait, or the
// underlying connection's read deadline when reads are not guarded.
func (c *DeadlineConn) SetReadDeadline(t time.Time) error {
	if c.r == nil {
		return c.Conn.SetReadDeadline(t)
	}
	c.r.setDeadline(t)
	return nil
}

// CloseWrite waits for the bytes already handed over, then shuts down the
// writing side of the underlying connection.
func (c *DeadlineConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.w.drain(); err != nil {
		return err
	}
	return CloseWrite(c.Conn)
}
