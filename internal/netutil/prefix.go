// Package netutil holds the small net.Conn helpers the carriers and the relay share.
package netutil

import (
	"errors"
	"net"
	"sync"
)

// PrefixConn is a net.Conn whose first reads return bytes that were already
// read from the underlying connection, such as the bytes a bufio.Reader held
// after an HTTP handshake. Writes, deadlines and closes go to the underlying
// connection. Like any net.Conn, its methods may be called from several
// goroutines at once.
type PrefixConn struct {
	net.Conn
	mu     sync.Mutex // guards prefix
	prefix []byte
}

// WithPrefix returns c itself when prefix is empty, so callers keep the
// concrete type (and the kernel's splice path) whenever nothing was buffered.
func WithPrefix(c net.Conn, prefix []byte) net.Conn {
	if len(prefix) == 0 {
		return c
	}
	return &PrefixConn{Conn: c, prefix: prefix}
}

// Read returns the buffered prefix first, then reads from the connection.
func (c *PrefixConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// Close drops the unread prefix and closes the connection, so a Read
// after Close returns net.ErrClosed as the net.Conn contract says.
func (c *PrefixConn) Close() error {
	c.mu.Lock()
	c.prefix = nil
	c.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite shuts down the writing side of the underlying connection.
// Embedding hides it, so it is forwarded explicitly.
func (c *PrefixConn) CloseWrite() error { return CloseWrite(c.Conn) }

// Split returns the bytes still to be read before the underlying connection,
// and that connection, without consuming them. A reader that takes over the
// connection this way must deliver the prefix itself.
func Split(c net.Conn) (prefix []byte, conn net.Conn) {
	if p, ok := c.(*PrefixConn); ok {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.prefix, p.Conn
	}
	return nil, c
}

// ErrNoCloseWrite is returned by CloseWrite for connections that cannot
// shut down only their writing side.
var ErrNoCloseWrite = errors.New("connection does not support half-close")

// CloseWrite shuts down the writing side of c when c supports it.
func CloseWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return ErrNoCloseWrite
}
