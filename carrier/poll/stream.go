package poll

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// stream is what both ends of a poll tunnel hold: the bytes that arrived
// and wait to be read (in), and the bytes written and kept until the peer
// acknowledges them (out), with a net.Conn's Read, Write and deadlines on
// top. The requests that move bytes between the two ends work on in and
// out under mu.
type stream struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every change of state
	in      inbox
	out     outbox
	closed  bool // Close was called on this end

	rd, wd deadline
}

func newStream(buffer int) *stream {
	return &stream{
		changed: make(chan struct{}),
		in:      inbox{limit: buffer},
		out:     outbox{limit: buffer},
		rd:      newDeadline(),
		wd:      newDeadline(),
	}
}

// broadcast wakes everyone waiting on s. The caller holds s.mu.
func (s *stream) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// await waits until the state changes or stop is closed, and reports
// whether stop ended the wait. It is called with s.mu held, and returns
// with it held again.
func (s *stream) await(stop <-chan struct{}) (stopped bool) {
	ch := s.changed
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return false
	case <-stop:
		return true
	}
}

// Read reads bytes that arrived, waiting for some.
func (s *stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	for {
		switch {
		case s.closed:
			s.mu.Unlock()
			return 0, opError("read", net.ErrClosed)
		case isDone(s.rd.done()):
			s.mu.Unlock()
			return 0, opError("read", os.ErrDeadlineExceeded)
		}
		if n, err := s.in.read(p); n > 0 || err != nil || len(p) == 0 {
			if n > 0 {
				s.broadcast() // room for more
			}
			s.mu.Unlock()
			if err != nil && err != io.EOF {
				err = opError("read", err)
			}
			return n, err
		}
		s.await(s.rd.done())
	}
}

// Write keeps p to be sent, waiting while the buffer is full.
func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	n := 0
	for {
		switch {
		case s.closed:
			s.mu.Unlock()
			return n, opError("write", net.ErrClosed)
		case isDone(s.wd.done()):
			s.mu.Unlock()
			return n, opError("write", os.ErrDeadlineExceeded)
		case s.out.eof:
			s.mu.Unlock()
			return n, opError("write", errWriteClosed)
		case s.out.err != nil:
			s.mu.Unlock()
			return n, opError("write", s.out.err)
		}
		if m := s.out.write(p[n:]); m > 0 {
			n += m
			s.broadcast()
		}
		if n == len(p) {
			s.mu.Unlock()
			return n, nil
		}
		s.await(s.wd.done())
	}
}

// closeWrite ends the outgoing stream after the bytes already written.
func (s *stream) closeWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return opError("close", net.ErrClosed)
	}
	if !s.out.eof && s.out.err == nil {
		s.out.eof = true
		s.broadcast()
	}
	return nil
}

// SetDeadline sets both deadlines.
func (s *stream) SetDeadline(t time.Time) error {
	s.rd.set(t)
	s.wd.set(t)
	return nil
}

// SetReadDeadline sets the deadline for Read.
func (s *stream) SetReadDeadline(t time.Time) error { s.rd.set(t); return nil }

// SetWriteDeadline sets the deadline for Write.
func (s *stream) SetWriteDeadline(t time.Time) error { s.wd.set(t); return nil }

var errWriteClosed = errors.New("write after CloseWrite")

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: Name, Err: err}
}

// inbox holds bytes that arrived until they are read.
type inbox struct {
	queue
	next  int64 // stream offset after the last byte taken in
	limit int
	err   error // io.EOF or why the stream broke; returned once the bytes are read
}

// put takes in as much of p as fits and returns how much it took.
func (b *inbox) put(p []byte) int {
	n := min(len(p), b.limit-b.len())
	if n <= 0 {
		return 0
	}
	b.push(p[:n])
	b.next += int64(n)
	return n
}

// read takes bytes out; (0, nil) means none are there yet.
func (b *inbox) read(p []byte) (int, error) {
	if b.len() > 0 {
		n := b.copyOut(p, 0)
		b.drop(n)
		return n, nil
	}
	return 0, b.err
}

// end sets how the stream ends once its bytes are read.
func (b *inbox) end(err error) {
	if b.err == nil {
		b.err = err
	}
}

// outbox holds written bytes until the peer acknowledges them.
type outbox struct {
	queue // unacknowledged bytes, from stream offset base
	base  int64
	limit int
	eof   bool  // CloseWrite: no bytes after these
	err   error // the stream broke: sent after the bytes
}

// end is the stream offset after the last byte written.
func (b *outbox) end() int64 { return b.base + int64(b.len()) }

// write takes as much of p as fits and returns how much it took.
func (b *outbox) write(p []byte) int {
	n := min(len(p), b.limit-b.len())
	if n <= 0 {
		return 0
	}
	b.push(p[:n])
	return n
}

// ack drops the bytes before off, which the peer now holds. It reports
// false for an offset outside what was written and is still held.
func (b *outbox) ack(off int64) bool {
	if off < b.base || off > b.end() {
		return false
	}
	b.drop(int(off - b.base))
	b.base = off
	return true
}

// copyFrom copies bytes from stream offset off, which ack has accepted,
// into p, and returns how many.
func (b *outbox) copyFrom(p []byte, off int64) int {
	return b.copyOut(p, int(off-b.base))
}

// deadline is a settable point in time whose passing closes a channel, as
// a net.Pipe's deadlines do.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{}
}

func newDeadline() deadline { return deadline{passed: make(chan struct{})} }

// set moves the deadline to t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer fired: wait until it has closed passed
	}
	d.timer = nil
	if isDone(d.passed) {
		d.passed = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.passed)
		return
	}
	ch := d.passed
	d.timer = time.AfterFunc(wait, func() { close(ch) })
}

// done is closed once the deadline has passed.
func (d *deadline) done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
