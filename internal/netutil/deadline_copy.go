package netutil

import (
	"io"
	"net"

	"github.com/porthole/porthole/internal/bufpool"
)

// WriteTo writes the connection's bytes to w until EOF, the fast path of
// io.Copy and of the relay. For guarded reads it writes each background
// read's bytes straight from that read's buffer, and starts the next read
// into a spare buffer first, so that reading and writing overlap without
// Read's copy into a caller's buffer. The read deadline applies as to
// Read; an idle connection holds only the buffer of its background read.
func (c *DeadlineConn) WriteTo(w io.Writer) (int64, error) {
	if c.r == nil {
		return io.Copy(w, c.Conn)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var n int64
	for {
		if c.closed.Load() {
			return n, c.opError("read", net.ErrClosed)
		}
		err := c.waitError("read", c.r.wait())
		c.r.mu.Lock()
		data := c.rdata
		c.rdata = nil
		c.r.mu.Unlock()
		if len(data) == 0 {
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			c.readAhead()
			continue
		}
		full := c.rbuf
		if err == nil {
			c.rbuf = nil // readAhead takes a spare; data's buffer is free once written
			c.readAhead()
		}
		m, werr := w.Write(data)
		n += int64(m)
		if full != c.rbuf {
			readBuffers.Put(full)
		}
		if werr != nil {
			return n, werr
		}
	}
}

// ReadFrom writes r's bytes until r's EOF, the fast path of io.Copy and of
// the relay. It reads them straight into the chunk buffer that the
// background write sends from, saving Write's copy: 32 KiB, as io.Copy's,
// and 256 KiB after a read that filled the buffer, a bulk transfer. A
// *net.TCPConn r is waited on holding no buffer; another r is read into
// the small one. The write deadline applies as to Write: after a timeout
// the chunk read last is still being written.
func (c *DeadlineConn) ReadFrom(r io.Reader) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var w *Waiter
	if tcp, isTCP := r.(*net.TCPConn); isTCP {
		w, _ = NewWaiter(tcp)
	}
	size := bufpool.Small
	var n int64
	for {
		if c.closed.Load() {
			return n, c.opError("write", net.ErrClosed)
		}
		if err := c.w.wait(); err != nil {
			return n, c.waitError("write", err)
		}
		if w != nil {
			c.releaseWriteBuffer()
			eof, err := w.Readable()
			if err != nil {
				return n, err
			}
			if eof {
				return n, nil
			}
		}
		c.takeWriteBuffer(size)
		m, rerr := r.Read(*c.wbuf)
		size = bufpool.Next(m, len(*c.wbuf))
		if m > 0 {
			buf := (*c.wbuf)[:m]
			c.w.start(func() error {
				_, err := c.Conn.Write(buf)
				return err
			})
			n += int64(m)
		}
		if rerr != nil {
			if err := c.w.wait(); err != nil {
				return n, c.waitError("write", err)
			}
			c.releaseWriteBuffer()
			if rerr == io.EOF {
				return n, nil
			}
			return n, rerr
		}
	}
}

// takeWriteBuffer makes the chunk buffer one of size bytes, bufpool.Small
// or bufpool.Large. No background write may be using the one it replaces.
func (c *DeadlineConn) takeWriteBuffer(size int) {
	if c.wbuf != nil && len(*c.wbuf) == size {
		return
	}
	c.releaseWriteBuffer()
	c.wbuf = bufpool.Get(size)
}

// releaseWriteBuffer returns the chunk buffer, which no background write
// may be using, to its pool.
func (c *DeadlineConn) releaseWriteBuffer() {
	if c.wbuf != nil {
		bufpool.Put(c.wbuf)
		c.wbuf = nil
	}
}
