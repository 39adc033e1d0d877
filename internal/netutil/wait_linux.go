package netutil

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// WaitQueued parks in the runtime's poller until the socket behind sc has
// bytes to read or has reached EOF, and returns how many bytes are queued
// (0 at EOF). It holds no buffer while it waits, so an idle connection
// costs nothing but its socket. It checks before it waits: readiness that
// came earlier is not signalled again. The connection's read deadline
// applies. ok is false when sc cannot be waited on this way.
func WaitQueued(sc syscall.Conn) (queued int, ok bool, err error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var serr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		m, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return false // nothing yet: wait for readiness
		case err != nil:
			serr = err
		case m > 0:
			queued, serr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		}
		return true
	})
	if err != nil {
		return 0, true, err
	}
	if serr != nil {
		return 0, true, &net.OpError{Op: "read", Net: "tcp", Err: serr}
	}
	return queued, true, nil
}

// Readable reports whether a read of c would return without waiting: it
// has a PrefixConn's prefix to return, or its TCP socket, beneath TLS if
// need be, has bytes queued or has reached EOF or an error. A poll(2) asks,
// which, unlike SIOCINQ, takes no socket lock. Bytes buffered inside a
// tls.Conn are not seen. ok is false when there is no socket to ask.
func Readable(c net.Conn) (readable, ok bool) {
	prefix, c := Split(c)
	if len(prefix) > 0 {
		return true, true
	}
	if t, isTLS := c.(*tls.Conn); isTLS {
		c = t.NetConn()
	}
	sc, isSocket := c.(syscall.Conn)
	if !isSocket {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var n int
	var perr error
	err = rc.Control(func(fd uintptr) {
		n, perr = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	})
	if err != nil || perr != nil {
		return false, false
	}
	return n > 0, true
}
