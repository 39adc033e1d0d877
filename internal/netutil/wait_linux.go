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

// Queued returns how many bytes c has for its reader without waiting, as
// far as the kernel can tell: a PrefixConn's prefix and the bytes queued on
// the TCP socket beneath it and beneath TLS. Bytes buffered inside a
// tls.Conn are not counted. ok is false when there is no socket to ask.
func Queued(c net.Conn) (queued int, ok bool) {
	prefix, c := Split(c)
	if t, isTLS := c.(*tls.Conn); isTLS {
		c = t.NetConn()
	}
	sc, isSocket := c.(syscall.Conn)
	if !isSocket {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		queued, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	if err != nil || ierr != nil {
		return 0, false
	}
	return len(prefix) + queued, true
}
