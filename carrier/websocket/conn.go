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

	"github.com/porthole/porthole/internal/netutil"
)

// conn carries a stream over a WebSocket: binary messages both ways; a text
// message is taken as its UTF-8 bytes (invalid UTF-8 closes with 1007).
//
// Half-close: neither side answers a Close frame at once. A Close received
// is the end of the peer's stream (Read returns io.EOF for 1000 and 1001,
// an error for other codes); this side sends its own Close, 1000, when its
// writing ends (CloseWrite) or at Close. RFC 6455 section 5.5.1 lets an
// endpoint delay its Close until its current message is sent; here the
// "message" is the rest of the stream.
//
// conn reads and writes the WebSocket directly, without deadlines of its
// own: gorilla's framing is corrupt after a read or write times out. The
// gateway's relay uses it as it is; connections handed to users are
// wrapped by netutil.SafeDeadlines, which FragileDeadlines asks for.
type conn struct {
	ws *websocket.Conn

	// Read side, used by one reader at a time.
	msg     io.Reader // the message being read; nil between messages
	text    bool      // msg is a text message
	partial []byte    // an incomplete UTF-8 sequence held back from a text message
	readErr error     // sticky

	wmu        sync.Mutex // Write and the Close frame
	closeSent  bool
	closeOnce  sync.Once
	lastRead   atomic.Int64 // unix nanoseconds of the last frame read
	keepalive  *time.Timer
	pingPeriod time.Duration
}

// maxCloseWait bounds writing a Close frame.
const maxCloseWait = 5 * time.Second

func newConn(ws *websocket.Conn, readLimit int64, pingPeriod time.Duration) *conn {
	c := &conn{ws: ws, pingPeriod: pingPeriod}
	ws.SetReadLimit(readLimit)
	// The peer's Close is its end of stream: answer it when our side ends.
	ws.SetCloseHandler(func(int, string) error { return nil })
	ws.SetPongHandler(func(string) error { c.touch(); return nil })
	c.touch()
	if pingPeriod > 0 {
		// Armed only once assigned: ping resets c.keepalive.
		c.keepalive = time.AfterFunc(time.Hour, c.ping)
		c.keepalive.Reset(pingPeriod)
	}
	return c
}

func (c *conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// ping keeps intermediaries from cutting an idle tunnel, and ends a tunnel
// whose peer has answered nothing for two periods.
func (c *conn) ping() {
	if time.Since(time.Unix(0, c.lastRead.Load())) > 2*c.pingPeriod {
		c.ws.NetConn().Close()
		return
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.pingPeriod)); err != nil {
		return
	}
	c.keepalive.Reset(c.pingPeriod)
}

// FragileDeadlines marks conn for netutil.SafeDeadlines.
func (c *conn) FragileDeadlines() {}

func (c *conn) Read(p []byte) (int, error) {
	for c.readErr == nil {
		if c.msg == nil {
			if err := c.next(); err != nil {
				c.readErr = err
				break
			}
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
	n, err := c.msg.Read(p)
	if c.text && n > 0 {
		if n, err = c.checkUTF8(p, n, err); err != nil {
			c.readErr = err
			return n, err
		}
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

// copyBuffers lends the relay's copy buffers only while bytes move, so an
// idle tunnel holds none.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// WriteTo copies the peer's stream to w until its end, the relay's fast
// path: it waits for each message holding no buffer of its own.
func (c *conn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for c.readErr == nil {
		if c.msg == nil {
			if err := c.next(); err != nil {
				c.readErr = err
				break
			}
		}
		bp := copyBuffers.Get().(*[]byte)
		for c.msg != nil && c.readErr == nil {
			m, err := c.readMsg(*bp)
			if m > 0 {
				if _, werr := w.Write((*bp)[:m]); werr != nil {
					copyBuffers.Put(bp)
					return n, werr
				}
				n += int64(m)
			}
			if err != nil {
				break
			}
		}
		copyBuffers.Put(bp)
	}
	if c.readErr == io.EOF {
		return n, nil
	}
	return n, c.readErr
}

// ReadFrom sends r's bytes as binary messages until r's EOF, the relay's
// fast path: when r is a socket it waits for bytes holding no buffer, then
// sends what is queued (up to 32 KiB a message).
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	sc, _ := r.(syscall.Conn)
	for {
		if sc != nil {
			queued, ok, err := netutil.WaitQueued(sc)
			if err != nil {
				return n, err
			}
			if ok && queued == 0 {
				return n, nil
			}
		}
		bp := copyBuffers.Get().(*[]byte)
		m, err := r.Read(*bp)
		if m > 0 {
			if _, werr := c.Write((*bp)[:m]); werr != nil {
				copyBuffers.Put(bp)
				return n, werr
			}
			n += int64(m)
		}
		copyBuffers.Put(bp)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
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

// checkUTF8 validates the n bytes just read into p as part of a text
// message, holding back a trailing incomplete sequence for the next read.
func (c *conn) checkUTF8(p []byte, n int, err error) (int, error) {
	buf := append(c.partial, p[:n]...)
	c.partial = nil
	valid := len(buf)
	// Hold back up to 3 bytes of a sequence the next read may complete.
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-3; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				valid = i
			}
			break
		}
	}
	if !utf8.Valid(buf[:valid]) {
		return 0, c.fail(websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in a text message")
	}
	c.partial = append(c.partial, buf[valid:]...)
	return copy(p, buf[:valid]), err
}

// fail closes the WebSocket with code and reason, as a protocol error.
func (c *conn) fail(code int, reason string) error {
	c.sendClose(code, reason)
	c.ws.NetConn().Close()
	return &websocket.CloseError{Code: code, Text: reason}
}

// readError maps a read error: the peer's normal Close is EOF.
func (c *conn) readError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway) {
		return io.EOF
	}
	return err
}

// Write sends p as one binary message.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return 0, net.ErrClosed
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite sends Close 1000: the end of this side's stream.
func (c *conn) CloseWrite() error {
	return c.sendClose(websocket.CloseNormalClosure, "")
}

func (c *conn) sendClose(code int, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return nil
	}
	c.closeSent = true
	return c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(maxCloseWait))
}

// Close sends Close 1000 if this side has not ended yet, and closes the
// connection.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		if c.keepalive != nil {
			c.keepalive.Stop()
		}
		c.sendClose(websocket.CloseNormalClosure, "")
		err = c.ws.NetConn().Close()
	})
	return err
}

func (c *conn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// Deadlines go to the underlying connection. A deadline that passes mid-frame
// breaks the WebSocket for good; netutil.SafeDeadlines guards against it.
func (c *conn) SetDeadline(t time.Time) error      { return c.ws.NetConn().SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.ws.NetConn().SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.ws.NetConn().SetWriteDeadline(t) }

var _ netutil.Fragile = (*conn)(nil)
