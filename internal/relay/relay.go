// Package relay carries a tunnel's bytes between two connections, both ways,
// with half-close, on the kernel's zero-copy path where both ends are TCP.
package relay

import (
	"errors"
	"net"
	"sync"

	"github.com/porthole/porthole/internal/netutil"
)

// Stats counts the bytes a Pipe carried in each direction.
type Stats struct {
	AToB int64 // bytes read from a and written to b
	BToA int64 // bytes read from b and written to a
}

// Pipe copies from a to b and from b to a until both directions end, then
// closes both connections. It uses one goroutine besides the caller's.
//
// When one side reaches EOF, Pipe half-closes the other side's writing end
// (CloseWrite), so the other direction keeps flowing: a client that shuts its
// write side still receives everything the service sends back. A side that
// cannot half-close is closed whole instead. When a direction fails with an
// error, both connections are closed at once, which ends the other direction;
// a connection with an Abort(error) method gets the error that way instead.
//
// Bytes a carrier read ahead during its handshake (a *netutil.PrefixConn) are
// written first; after them the copy runs between the underlying connections,
// so two *net.TCPConn ends use splice(2).
//
// Pipe returns the first error of either direction, or nil when both ended
// with EOF.
func Pipe(a, b net.Conn) (Stats, error) {
	var (
		stats Stats
		bErr  error
		wg    sync.WaitGroup
		once  sync.Once
	)
	abort := func(err error) {
		once.Do(func() {
			closeWith(a, err)
			closeWith(b, err)
		})
	}
	wg.Go(func() {
		stats.BToA, bErr = half(a, b)
		if bErr != nil {
			abort(bErr)
		}
	})
	var aErr error
	stats.AToB, aErr = half(b, a)
	if aErr != nil {
		abort(aErr)
	}
	wg.Wait()
	abort(nil)
	return stats, errors.Join(ignoreClosed(aErr), ignoreClosed(bErr))
}

// An aborter is a connection that can pass on why its tunnel broke, such
// as a poll session, which tells its client the service's error.
type aborter interface{ Abort(err error) error }

// closeWith closes c, passing err on when c is an aborter.
func closeWith(c net.Conn, err error) {
	if ab, ok := c.(aborter); ok && err != nil {
		ab.Abort(err)
		return
	}
	c.Close()
}

// half copies src to dst until src's EOF, then half-closes dst.
func half(dst, src net.Conn) (int64, error) {
	prefix, src := netutil.Split(src)
	_, dst = netutil.Split(dst)
	var n int64
	if len(prefix) > 0 {
		m, err := dst.Write(prefix)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	m, err := copyStream(dst, src)
	n += m
	if err != nil {
		return n, err
	}
	if err := netutil.CloseWrite(dst); err != nil {
		if errors.Is(err, netutil.ErrNoCloseWrite) {
			return n, dst.Close()
		}
		return n, err
	}
	return n, nil
}

// ignoreClosed drops the error a direction gets when Pipe itself closed its
// connection because the other direction failed; that other error is the one
// worth reporting.
func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Loop copies c back to itself until EOF, half-closes it, and closes it:
// the echo service. It returns the bytes echoed.
func Loop(c net.Conn) (int64, error) {
	n, err := half(c, c)
	c.Close()
	return n, ignoreClosed(err)
}
