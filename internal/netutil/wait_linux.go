package netutil

import (
	"crypto/tls"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Waiter parks a goroutine in the runtime's poller until one socket has
// bytes to read or has reached its end, holding no buffer, so that an idle
// connection costs nothing but its socket. It is made once per connection
// (NewWaiter), so that a wait allocates nothing. The connection's read
// deadline applies. One goroutine at a time may wait.
type Waiter struct {
	rc   syscall.RawConn
	peek func(fd uintptr) bool // rc.Read's callback
	inq  func(fd uintptr)      // rc.Control's callback

	again bool // on the callback's next call, the poller has woken the goroutine
	eof   bool
	n     int
	err   error // of the last system call
}

// NewWaiter prepares waits on the socket behind sc; ok is false when sc
// has none.
func NewWaiter(sc syscall.Conn) (w *Waiter, ok bool) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	w = &Waiter{rc: rc}
	// The peek checks before the goroutine parks: a readiness that came
	// earlier is not signalled again. It tells bytes from the end; after
	// the poller wakes the goroutine, what has come is left for the
	// caller's next system call to tell.
	w.peek = func(fd uintptr) bool {
		if w.again {
			return true
		}
		m, err := peekByte(fd)
		switch {
		case err == unix.EAGAIN:
			w.again = true
			return false
		case err != nil:
			w.err = err
		case m == 0:
			w.eof = true
		}
		return true
	}
	w.inq = func(fd uintptr) { w.n, w.err = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }
	return w, true
}

// peekByte peeks at the next byte of socket fd without waiting: 1, 0 at
// its end, or the error (EAGAIN: nothing yet). It is recvfrom(2) called
// directly: unix.Recvfrom allocates the sender's address on every call.
func peekByte(fd uintptr) (int, error) {
	var b [1]byte
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// wait parks until the socket may be read; eof reports its end, when the
// peek saw it; woke reports that the goroutine parked, after which the
// peek has not looked.
func (w *Waiter) wait() (eof, woke bool, err error) {
	w.again, w.eof, w.err = false, false, nil
	if err := w.rc.Read(w.peek); err != nil {
		return false, false, err
	}
	if w.err != nil {
		return false, false, &net.OpError{Op: "read", Net: "tcp", Err: w.err}
	}
	return w.eof, w.again, nil
}

// Readable parks until the socket has bytes to read or has reached its
// end, and reports which: after it parked, it peeks once more, so that a
// caller that then takes a buffer to read never waits holding it.
func (w *Waiter) Readable() (eof bool, err error) {
	for {
		eof, woke, err := w.wait()
		if err != nil || eof || !woke {
			return eof, err
		}
	}
}

// Queued parks until the socket has bytes to read or has reached its end,
// and returns how many bytes are queued, 0 at the end. After it parked it
// asks the count at once (SIOCINQ), and peeks only when the count is 0:
// the end, or a wake-up for bytes already read.
func (w *Waiter) Queued() (int, error) {
	for {
		eof, woke, err := w.wait()
		if err != nil || eof {
			return 0, err
		}
		if err := w.rc.Control(w.inq); err != nil {
			return 0, err
		}
		if w.err != nil {
			return 0, &net.OpError{Op: "read", Net: "tcp", Err: w.err}
		}
		if w.n > 0 || !woke {
			return w.n, nil
		}
	}
}

// Readiness tells whether a read of one connection would return without
// waiting: the connection has a PrefixConn's prefix to return, or its TCP
// socket, beneath TLS if need be, has bytes queued or has reached EOF or an
// error. A poll(2) asks, which, unlike SIOCINQ, takes no socket lock. Bytes
// buffered inside a tls.Conn are not seen. It is made once per connection,
// so that a question, asked on a relay's hot path, allocates nothing. One
// goroutine at a time may ask.
type Readiness struct {
	conn     net.Conn
	rc       syscall.RawConn // the socket beneath conn; nil when there is none
	poll     func(fd uintptr)
	readable bool
	err      error
}

// NewReadiness prepares the question for c.
func NewReadiness(c net.Conn) *Readiness {
	r := &Readiness{conn: c}
	_, inner := Split(c)
	if t, isTLS := inner.(*tls.Conn); isTLS {
		inner = t.NetConn()
	}
	if sc, isSocket := inner.(syscall.Conn); isSocket {
		r.rc, _ = sc.SyscallConn()
	}
	r.poll = func(fd uintptr) {
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds[:], 0)
		r.readable, r.err = n > 0, err
	}
	return r
}

// Readable reports whether a read would return without waiting; ok is
// false when there is no socket to ask.
func (r *Readiness) Readable() (readable, ok bool) {
	if prefix, _ := Split(r.conn); len(prefix) > 0 {
		return true, true
	}
	if r.rc == nil || r.rc.Control(r.poll) != nil || r.err != nil {
		return false, false
	}
	return r.readable, true
}

// readNow reads a connection's bytes only when they are there: a
// HandOff's first try.
type readNow struct {
	rc        syscall.RawConn       // a TCP socket's; nil for other connections
	try       func(fd uintptr) bool // rc.Read's callback
	p         []byte
	n         int
	err       error
	readiness *Readiness // for other connections
}

func (r *readNow) init(c net.Conn) {
	if sc, isSocket := c.(syscall.Conn); isSocket {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
			r.try = func(fd uintptr) bool {
				r.n, r.err = unix.Read(int(fd), r.p)
				// Never park here: the caller hands off first, outside
				// this callback, which holds the socket, so that a write
				// blocked on the service cannot hold up its Close.
				return true
			}
			return
		}
	}
	r.readiness = NewReadiness(c)
}

// read reads p from c if bytes are waiting; ok is false when it did not
// read: nothing has arrived, or the socket's end or error, which c.Read
// tells, or nothing can tell.
func (r *readNow) read(c net.Conn, p []byte) (n int, ok bool, err error) {
	if r.rc == nil {
		if readable, known := r.readiness.Readable(); readable && known {
			n, err = c.Read(p)
			return n, true, err
		}
		return 0, false, nil
	}
	r.p = p
	err = r.rc.Read(r.try)
	r.p = nil
	if err != nil || r.err != nil || r.n <= 0 {
		return 0, false, nil
	}
	return r.n, true, nil
}
