package relay

import (
	"io"
	"net"

	"github.com/porthole/porthole/internal/netutil"
)

// copyStream copies src to dst until src's EOF. Between two TCP
// connections it splices, but waits for src's bytes without holding a
// splice pipe: io.Copy alone keeps a pipe (two file descriptors and kernel
// memory) for each direction of an idle tunnel, which would cap a gateway
// at a few thousand tunnels. Here an idle direction holds nothing but its
// sockets; once bytes are queued, exactly those are spliced.
//
// Between a TCP connection and a carrier's connection it calls the
// carrier's WriteTo or ReadFrom directly, which wait the same way: through
// io.Copy the call would go through net's generic wrappers, deepening
// every idle tunnel's goroutine stacks.
func copyStream(dst, src net.Conn) (int64, error) {
	s, srcTCP := src.(*net.TCPConn)
	_, dstTCP := dst.(*net.TCPConn)
	if wt, ok := src.(io.WriterTo); ok && !srcTCP {
		return wt.WriteTo(dst)
	}
	if rf, ok := dst.(io.ReaderFrom); ok && !dstTCP {
		return rf.ReadFrom(src)
	}
	if !srcTCP || !dstTCP {
		return io.Copy(dst, src)
	}
	w, ok := netutil.NewWaiter(s)
	if !ok {
		return io.Copy(dst, src)
	}
	var n int64
	lr := &io.LimitedReader{R: s} // a *io.LimitedReader of a *net.TCPConn still splices
	for {
		queued, err := w.Queued()
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
