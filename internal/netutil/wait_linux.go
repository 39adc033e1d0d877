package netutil

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// WaitReadable parks in the runtime's poller until the socket behind sc
// has bytes to read or has reached EOF, and reports which. It holds no
// buffer while it waits, so an idle connection costs nothing but its
// socket. It checks before it waits: readiness that came earlier is not
// signalled again. The connection's read deadline applies. ok is false
// when sc cannot be waited on this way.
func WaitReadable(sc syscall.Conn) (eof, ok bool, err error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false, nil
	}
	eof, err = waitReadable(rc)
	return eof, true, err
}

// WaitQueued is WaitReadable that also returns how many bytes are queued
// (0 at EOF), at the cost of a second system call.
func WaitQueued(sc syscall.Conn) (queued int, ok bool, err error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	eof, err := waitReadable(rc)
	if err != nil || eof {
		return 0, true, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { queued, serr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return 0, true, err
	}
	if serr != nil {
		return 0, true, &net.OpError{Op: "read", Net: "tcp", Err: serr}
	}
	return queued, true, nil
}

// waitReadable is WaitReadable on the socket's raw connection: a peek of
// one byte tells bytes from EOF, and its EAGAIN sends the goroutine to
// the poller.
func waitReadable(rc syscall.RawConn) (eof bool, err error) {
	var serr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		m, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return false // nothing yet: wait for readiness
		case err != nil:
			serr = err
		case m == 0:
			eof = true
		}
		return true
	})
	if err != nil {
		return false, err
	}
	if serr != nil {
		return false, &net.OpError{Op: "read", Net: "tcp", Err: serr}
	}
	return eof, nil
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
