package netutil

import "net"

// HandOff is what the reads of a connection made by NewHandOff do before
// they wait for the peer: a reader that holds bytes it read earlier and
// has not passed on yet hands them on there. It can then read on to fill
// its buffer without holding them for bytes still to come, and without
// asking first whether more has arrived: a Read that finds bytes waiting,
// the common case in bulk, costs the system call of a plain Read. On a TCP
// socket the Read first tries the socket without waiting; on other
// connections (TLS) it asks the socket beneath (Readiness), and hands off
// when it cannot tell.
//
// One goroutine at a time may read, and only it sets Func.
type HandOff struct {
	// Func, when not nil, runs before a Read waits (and may run before
	// one that reports the connection's end or an error). An error it
	// returns is the Read's, and the Read does not wait.
	Func func() error
	conn net.Conn
	now  readNow
}

// NewHandOff wraps c in a connection whose Read hands off (see HandOff).
// Writes, deadlines and closes go to c. A *net.TCPConn keeps its other
// methods, among them the vectored writes net.Buffers uses, and also its
// WriteTo, which reads without handing off: read it through Read.
func NewHandOff(c net.Conn) (net.Conn, *HandOff) {
	h := &HandOff{conn: c}
	h.now.init(c)
	if tc, isTCP := c.(*net.TCPConn); isTCP {
		return &handOffTCPConn{tc, h}, h
	}
	return &handOffConn{c, h}, h
}

// Conn returns the connection NewHandOff wrapped.
func (h *HandOff) Conn() net.Conn { return h.conn }

// read reads from the connection, calling Func first if it would wait.
func (h *HandOff) read(p []byte) (int, error) {
	if h.Func == nil || len(p) == 0 {
		return h.conn.Read(p)
	}
	if n, ok, err := h.now.read(h.conn, p); ok {
		return n, err
	}
	if err := h.Func(); err != nil {
		return 0, err
	}
	return h.conn.Read(p)
}

type handOffConn struct {
	net.Conn
	h *HandOff
}

func (c *handOffConn) Read(p []byte) (int, error) { return c.h.read(p) }

// CloseWrite shuts down the writing side of the underlying connection.
// Embedding hides it, so it is forwarded explicitly.
func (c *handOffConn) CloseWrite() error { return CloseWrite(c.Conn) }

// handOffTCPConn embeds the *net.TCPConn itself, not a net.Conn, so that
// net.Buffers finds its vectored writes: gorilla writes a frame's head and
// a large payload with one writev through them.
type handOffTCPConn struct {
	*net.TCPConn
	h *HandOff
}

func (c *handOffTCPConn) Read(p []byte) (int, error) { return c.h.read(p) }
