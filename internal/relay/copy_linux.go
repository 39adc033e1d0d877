package relay

import (
	"errors"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// copyStream copies src to dst until src's EOF. Between two TCP
// connections it splices, but waits for src's bytes without holding a
// splice pipe: io.Copy alone keeps a pipe (two file descriptors and kernel
// memory) for each direction of an idle tunnel, which would cap a gateway
// at a few thousand tunnels. Here an idle direction holds nothing but its
// sockets; once bytes are queued, exactly those are spliced.
func copyStream(dst, src net.Conn) (int64, error) {
	s, ok := src.(*net.TCPConn)
	if _, ok2 := dst.(*net.TCPConn); !ok || !ok2 {
		return io.Copy(dst, src)
	}
	rc, err := s.SyscallConn()
	if err != nil {
		return io.Copy(dst, src)
	}
	var n int64
	lr := &io.LimitedReader{R: s} // a *io.LimitedReader of a *net.TCPConn still splices
	for {
		queued, err := waitQueued(rc)
		if err != nil || queued == 0 {
			return n, err
		}
		lr.N = int64(queued)
		m, err := io.Copy(dst, lr)
		n += m
		if err != nil {
			return n, err
		}
	}
}

// waitQueued parks in the runtime's poller until the socket has bytes to
// read or has reached EOF, and returns how many bytes are queued (0 at EOF).
// It checks before it waits: readiness that came earlier is not signalled
// again.
func waitQueued(rc interface {
	Read(func(fd uintptr) bool) error
}) (int, error) {
	var (
		queued int
		serr   error
	)
	err := rc.Read(func(fd uintptr) bool {
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
		return 0, err
	}
	if serr != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: serr}
	}
	return queued, nil
}
