package websocket

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/porthole/porthole/internal/bufpool"
	"github.com/porthole/porthole/internal/netutil"
)

// conn carries a stream over a WebSocket: binary messages both ways; a text
// message is taken as its UTF-8 bytes (invalid UTF-8 closes with 1007).
//
// Half-close: neither side answers a Close frame at once. A Close received
// is the end of the peer's stream (Read returns io.EOF for 1000, 1001 and a
// Close without a code, an error for other codes); this side sends its own
// Close, 1000, when its writing ends (CloseWrite) or at Close. RFC 6455
// section 5.5.1 lets an endpoint delay its Close until its current message
// is sent; here the "message" is the rest of the stream.
//
// conn reads and writes the WebSocket directly, without deadlines of its
// own: gorilla's framing is corrupt after a read or write times out. The
// gateway's relay uses it as it is; connections handed to users are
// wrapped by netutil.SafeDeadlines, which FragileDeadlines asks for.
type conn struct {
	ws *websocket.Conn
	nc net.Conn // the connection beneath, as hijacked or dialed

	// Read side, used by one reader at a time.
	msg     io.Reader // the message being read; nil between messages
	text    bool      // msg is a text message
	partial []byte    // an incomplete UTF-8 sequence held back from a text message
	ready   []byte    // checked text bytes a short Read had no room for
	readErr error     // sticky
	// handOff: what gorilla's reads do before they wait; WriteTo hands on
	// what it holds there.
	handOff *netutil.HandOff

	wmu        sync.Mutex // Write and the Close frame
	closeSent  bool
	closeOnce  sync.Once
	heard      atomic.Bool  // a frame was read since the keep-alive last looked
	lastHeard  atomic.Int64 // when the keep-alive last found heard set (or the tunnel opened), as sinceEpoch
	lastPing   atomic.Int64 // when the last ping went out (or the tunnel opened), as sinceEpoch
	pinging    atomic.Bool  // a ping is being written
	silent     atomic.Bool  // the keep-alive cut the tunnel: the peer sent nothing for two periods
	peerClosed atomic.Bool  // the peer's Close was read: it answers no more pings
	keepalive  *keepalive   // nil: no pings
}

// errSilent is the read error of a tunnel the keep-alive cut.
var errSilent = errors.New("websocket: cut: the peer sent nothing, not even a pong, for two ping intervals")

// maxCloseWait bounds writing a Close frame.
const maxCloseWait = 5 * time.Second

// newConn makes the tunnel of ws, which runs over the connection
// handOff's was made of; k, if not nil, keeps it alive.
func newConn(ws *websocket.Conn, handOff *netutil.HandOff, readLimit int64, k *keepalive) *conn {
	c := &conn{ws: ws, nc: handOff.Conn(), handOff: handOff, keepalive: k}
	ws.SetReadLimit(readLimit)
	// The peer's Close is its end of stream: answer it when our side ends.
	ws.SetCloseHandler(func(int, string) error { return nil })
	ws.SetPongHandler(func(string) error { c.touch(); return nil })
	opened := int64(sinceEpoch())
	c.lastHeard.Store(opened)
	c.lastPing.Store(opened)
	if k != nil {
		k.add(c)
	}
	return c
}

// touch notes that the peer sent something, for the keep-alive. It reads
// no clock, which every read of a message would pay: the keep-alive dates
// it when it next looks, at most a quarter of a period later, which can
// only delay a cut, never hasten it. A read costs a load, rarely a store.
func (c *conn) touch() {
	if !c.heard.Load() {
		c.heard.Store(true)
	}
}

// keepAlive is the keep-alive's look at c at now (sinceEpoch): it pings c
// a period after its last ping, and cuts it when the peer has sent nothing
// for two periods. It reports false once c needs no more: it is cut, or
// its peer has sent its Close and answers no more pings (a service still
// sending after the client's end is not cut). After our own Close no ping
// may follow, but the check goes on: it cuts a peer that never answers
// that Close. It must not block: the clock serves every tunnel.
func (c *conn) keepAlive(now, period time.Duration) bool {
	if c.peerClosed.Load() {
		return false
	}
	if c.heard.Swap(false) {
		c.lastHeard.Store(int64(now))
	}
	if now-time.Duration(c.lastHeard.Load()) > 2*period {
		c.silent.Store(true)
		go c.nc.Close() // a TLS close_notify may wait
		return false
	}
	if now-time.Duration(c.lastPing.Load()) >= period && c.pinging.CompareAndSwap(false, true) {
		c.lastPing.Store(int64(now))
		go c.ping()
	}
	return true
}

// ping writes a Ping. It sets no write deadline: gorilla leaves a
// control frame's deadline on the connection, a pending runtime timer
// (see keepalive). A peer that reads nothing holds the ping as it would
// hold the stream's bytes, and is cut if it sends nothing either; after
// our Close, gorilla refuses the ping.
func (c *conn) ping() {
	defer c.pinging.Store(false)
	c.ws.WriteControl(websocket.PingMessage, nil, time.Time{})
}

// FragileDeadlines marks conn for netutil.SafeDeadlines.
func (c *conn) FragileDeadlines() {}

func (c *conn) Read(p []byte) (int, error) {
	for c.readErr == nil {
		if !c.open() {
			break
		}
		if n, err := c.readMsg(p); n > 0 || err != nil {
			return n, err
		}
	}
	return 0, c.readErr
}

// readMsg reads from the current message. At its end it returns 0, nil and
// leaves no current message.
func (c *conn) readMsg(p []byte) (int, error) {
	if len(c.ready) > 0 {
		n := copy(p, c.ready)
		c.ready = c.ready[n:]
		return n, nil
	}
	var n int
	var err error
	if c.text {
		n, err = c.readText(p)
	} else {
		n, err = c.msg.Read(p)
	}
	if c.readErr != nil { // invalid UTF-8
		return n, c.readErr
	}
	if err == io.EOF {
		if c.text && len(c.partial) > 0 {
			c.readErr = c.fail(websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in a text message")
			return n, c.readErr
		}
		c.msg = nil
		err = nil
	}
	if err != nil {
		c.readErr = c.readError(err)
		return n, c.readErr
	}
	if n > 0 {
		c.touch()
	}
	return n, nil
}

// WriteTo copies the peer's stream to w until its end, the relay's fast
// path: it waits for each message holding no buffer of its own. It fills
// its buffer to the message's end before each write, since a message's
// first read returns only what gorilla's read buffer holds, and writing
// that alone would cost a second write per message. Bytes that came are
// not held for bytes still to come: whenever a read would wait, what the
// buffer holds goes to w first (netutil.HandOff).
func (c *conn) WriteTo(w io.Writer) (int64, error) {
	out := &held{w: w}
	write := out.write // made once: a method value allocates
	for c.readErr == nil {
		if !c.open() {
			break
		}
		bp := bufpool.Get(bufpool.Small)
		for c.inMessage() && c.readErr == nil {
			out.buf, out.start, out.end = *bp, 0, 0
			for out.end < len(out.buf) && c.inMessage() && c.readErr == nil {
				c.handOff.Func = nil
				if out.end > out.start {
					c.handOff.Func = write
				}
				m, err := c.readMsg(out.buf[out.end:])
				out.end += m
				if err != nil {
					break
				}
			}
			c.handOff.Func = nil
			if out.write() != nil {
				bufpool.Put(bp)
				return out.n, out.err
			}
			if out.end == bufpool.Small && len(out.buf) == bufpool.Small && c.inMessage() {
				// A message larger than the small buffer: a bulk
				// transfer, which goes on through the large one.
				bufpool.Put(bp)
				bp = bufpool.Get(bufpool.Large)
			}
		}
		bufpool.Put(bp)
	}
	if out.err != nil {
		return out.n, out.err
	}
	if c.readErr == io.EOF {
		return out.n, nil
	}
	return out.n, c.readErr
}

// held is what WriteTo has read and not yet written: buf[start:end].
type held struct {
	w          io.Writer
	buf        []byte
	start, end int
	n          int64 // written
	err        error // of a write; sticky
}

// write writes what is held. A failed write ends the read that handed
// off, with a handOffError.
func (h *held) write() error {
	if h.err != nil {
		return handOffError{h.err}
	}
	if h.start == h.end {
		return nil
	}
	m, err := h.w.Write(h.buf[h.start:h.end])
	h.n += int64(m)
	h.start = h.end
	if err != nil {
		h.err = err
		return handOffError{err}
	}
	return nil
}

// handOffError is a failed write to the service, seen by the read that
// handed off: the tunnel ends with the write's error.
type handOffError struct{ err error }

func (e handOffError) Error() string { return e.err.Error() }
func (e handOffError) Unwrap() error { return e.err }

// ReadFrom sends r's bytes as binary messages until r's EOF, the relay's
// fast path: when r is a socket it waits for bytes holding no buffer, then
// sends what is queued, a message per read: through the small buffer, or
// the large one after a read that filled its buffer, a bulk transfer.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var w *netutil.Waiter
	if sc, isSocket := r.(syscall.Conn); isSocket {
		w, _ = netutil.NewWaiter(sc)
	}
	size := bufpool.Small
	for {
		if w != nil {
			eof, err := w.Readable()
			if err != nil {
				return n, err
			}
			if eof {
				return n, nil
			}
		}
		bp := bufpool.Get(size)
		m, err := r.Read(*bp)
		size = bufpool.Next(m, len(*bp))
		if m > 0 {
			if _, werr := c.Write((*bp)[:m]); werr != nil {
				bufpool.Put(bp)
				return n, werr
			}
			n += int64(m)
		}
		bufpool.Put(bp)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// inMessage reports whether a message has bytes left to read.
func (c *conn) inMessage() bool { return c.msg != nil || len(c.ready) > 0 }

// open starts the next message unless one is in progress; false means the
// stream has ended, its error in c.readErr.
func (c *conn) open() bool {
	if c.inMessage() {
		return true
	}
	if err := c.next(); err != nil {
		c.readErr = err
		return false
	}
	return true
}

// next starts the next message.
func (c *conn) next() error {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return c.readError(err)
	}
	c.touch()
	c.msg, c.text = r, typ == websocket.TextMessage
	return nil
}

// readText reads from a text message into p, passing on only valid UTF-8:
// a sequence cut by a frame or read boundary is held back (at most 3
// bytes) and goes first into the next read. A p too short for that is
// read through a small buffer whose excess waits in c.ready. Invalid
// UTF-8 fails the WebSocket with 1007 and sets c.readErr.
func (c *conn) readText(p []byte) (int, error) {
	var small [2 * utf8.UTFMax]byte
	buf := p
	if len(p) < len(small) {
		buf = small[:]
	}
	k := copy(buf, c.partial)
	m, err := c.msg.Read(buf[k:])
	buf = buf[:k+m]
	valid := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				valid = i
			}
			break
		}
	}
	if !utf8.Valid(buf[:valid]) {
		c.readErr = c.fail(websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in a text message")
		return 0, c.readErr
	}
	c.partial = append(c.partial[:0], buf[valid:]...)
	if len(p) < len(small) {
		n := copy(p, buf[:valid])
		c.ready = append(c.ready[:0], buf[n:valid]...)
		return n, err
	}
	return valid, err
}

// fail closes the WebSocket with code and reason, as a protocol error.
func (c *conn) fail(code int, reason string) error {
	c.trySendClose(code, reason)
	c.linger()
	c.nc.Close()
	return &websocket.CloseError{Code: code, Text: reason}
}

// lingerTime bounds how long a tunnel that failed reads and drops what
// the peer still sends after the Close.
const lingerTime = time.Second

// linger ends the writing side after the Close frame, then reads and drops
// what the peer still sends, until it ends or lingerTime passes. Closing
// with the peer's bytes unread would make the kernel reset the connection,
// and a reset destroys what the peer has not read yet: the echo and the
// Close frame that says why the tunnel failed (net/http's closeWriteAndWait
// avoids the same). It runs where nothing else reads: on the reading
// goroutine, or at Close once the peer's Close has ended the reading.
func (c *conn) linger() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, c.nc)
}

// readError maps a read error: the peer's normal Close is EOF, and so is
// a Close without a code (1005), which browsers and Node's ws send for a
// close() given none.
func (c *conn) readError(err error) error {
	var he handOffError
	if errors.As(err, &he) {
		return he.err // the service's write failed; nothing to tell the peer
	}
	if c.silent.Load() {
		// Not the closed connection's error, which the relay takes for
		// its own closing and drops: the tunnel broke.
		return errSilent
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		c.peerClosed.Store(true)
		switch ce.Code {
		case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived:
			return io.EOF
		}
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		// gorilla has sent 1009 for a message over the limit, but sends no
		// Close for a length field it cannot hold (its top bit set): a
		// protocol error. After gorilla's Close this sends nothing.
		c.trySendClose(websocket.CloseProtocolError, "invalid frame length")
	}
	var ne net.Error
	if !c.peerClosed.Load() && !errors.As(err, &ne) {
		// gorilla has sent its Close for a protocol error or a message
		// over the limit; the peer may still be sending.
		c.linger()
	}
	return err
}

// Write sends p as binary messages of up to MaxMessageSent bytes.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return 0, net.ErrClosed
	}
	n := 0
	for n < len(p) {
		m := min(len(p)-n, MaxMessageSent)
		if err := c.ws.WriteMessage(websocket.BinaryMessage, p[n:n+m]); err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// CloseWrite sends Close 1000: the end of this side's stream.
func (c *conn) CloseWrite() error {
	return c.sendClose(websocket.CloseNormalClosure, "")
}

// sendClose sends a Close frame, once, after any Write in progress.
func (c *conn) sendClose(code int, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sendCloseLocked(code, reason)
}

// trySendClose sends a Close frame, once, unless a Write is in progress:
// one blocked on a peer that reads nothing would hold the caller, who is
// about to close the connection, for as long as it is blocked.
func (c *conn) trySendClose(code int, reason string) {
	if c.wmu.TryLock() {
		c.sendCloseLocked(code, reason)
		c.wmu.Unlock()
	}
}

func (c *conn) sendCloseLocked(code int, reason string) error {
	if c.closeSent {
		return nil
	}
	c.closeSent = true
	return c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(maxCloseWait))
}

// Close sends Close 1000 if this side has not ended yet (and no Write is
// in progress), and closes the connection, which ends any Write. A peer
// that went on sending after its own Close, which RFC 6455 forbids, is
// lingered for as after a protocol error, so that the reset its unread
// bytes would cause does not destroy what it has not read yet. Only a
// second Close is an error (net.ErrClosed): the goodbyes (the Close frame,
// a TLS close_notify) are best effort, as the peer may be gone already,
// and the socket is released all the same.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		if c.keepalive != nil {
			c.keepalive.remove(c)
		}
		c.trySendClose(websocket.CloseNormalClosure, "")
		if c.peerClosed.Load() {
			if unread, _ := netutil.NewReadiness(c.nc).Readable(); unread {
				c.linger()
			}
		}
		c.nc.Close()
		err = nil
	})
	return err
}

func (c *conn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// Deadlines go to the underlying connection. A deadline that passes mid-frame
// breaks the WebSocket for good; netutil.SafeDeadlines guards against it.
func (c *conn) SetDeadline(t time.Time) error      { return c.nc.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.nc.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

var _ netutil.Fragile = (*conn)(nil)
