package poll

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// session is the gateway's state for one poll tunnel, and the tunnel's
// connection as the gateway's relay sees it: Read returns what the client
// sent, Write keeps bytes for the client's receives.
//
// It outlives the relay: once the relay has closed it, the client can
// still collect the bytes and the end of stream it has not received,
// until it sends close or the session expires.
type session struct {
	*stream
	token       string
	local, peer net.Addr
	idleTimeout time.Duration
	expire      *time.Timer // runs forget after idleTimeout without a request
	active      int         // requests in progress, under mu
	gone        bool        // closed by the client or expired, under mu
	writing     bool        // WriteTo is writing bytes of in, under mu
	forget      func()      // removes the session from its server
	forgetOnce  sync.Once
	finished    chan struct{} // closed when the session is gone
}

// Errors a session's two ends see when the other goes away.
var (
	// errClientClosed is the relay's write error after the client's
	// close; its reads get the end of stream.
	errClientClosed = errors.New("the client closed the poll session")
	// errExpired ends a session no request has touched for its idle timeout.
	errExpired = errors.New("the poll session expired: no request from the client within its idle timeout")
)

// maxActive caps a session's requests in progress: a client needs two (a
// send and a receive) and a few retries beside them; more would only hold
// buffers.
const maxActive = 8

// begin marks a request in progress: the session does not expire during
// it. It returns 404 when the session is already gone, 429 when it has
// too many requests in progress, else 0.
func (s *session) begin() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.gone:
		return http.StatusNotFound
	case s.active >= maxActive:
		return http.StatusTooManyRequests
	}
	s.active++
	s.expire.Stop()
	return 0
}

// finish ends what begin started, starting the idle clock when no request
// is left.
func (s *session) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && !s.gone {
		s.expire.Reset(s.idleTimeout)
	}
}

// timeout runs when the idle clock runs out.
func (s *session) timeout() {
	s.mu.Lock()
	idle := s.active == 0
	s.mu.Unlock()
	if idle {
		s.end(errExpired, errExpired)
	}
}

// end makes the session gone: the relay reads inErr after the bytes it has
// not read yet and fails its writes with outErr; the server forgets it.
func (s *session) end(inErr, outErr error) {
	s.mu.Lock()
	if !s.gone {
		s.gone = true
		s.expire.Stop()
		s.in.end(inErr)
		if s.out.err == nil {
			s.out.err = outErr
		}
		s.broadcast()
		close(s.finished)
	}
	s.mu.Unlock()
	s.forgetOnce.Do(s.forget)
}

// Finished is closed once the session is gone: the client closed it, or
// it expired. Until then, after the relay has closed it, the client may
// still collect its bytes and its end.
func (s *session) Finished() <-chan struct{} { return s.finished }

// CloseWrite passes the service's end of stream to the client, after the
// bytes written before it.
func (s *session) CloseWrite() error { return s.closeWrite() }

// Close ends the gateway's end of the tunnel: the client receives the
// bytes already written, then the end of stream, as after a TCP close.
func (s *session) Close() error { return s.Abort(nil) }

// Abort ends the gateway's end of the tunnel because its stream broke with
// err: the client receives the bytes already written, then err instead of
// an end of stream. A nil err is Close.
func (s *session) Abort(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return opError("close", net.ErrClosed)
	}
	s.closed = true
	if !s.writing {
		s.in.reset() // else WriteTo does, once its write returns
	}
	switch {
	case s.out.eof || s.out.err != nil:
	case err != nil:
		s.out.err = err
	default:
		s.out.eof = true
	}
	s.broadcast()
	return nil
}

// LocalAddr is the gateway's address as the client's opening request
// reached it.
func (s *session) LocalAddr() net.Addr { return s.local }

// RemoteAddr is the client's address on its opening request.
func (s *session) RemoteAddr() net.Addr { return s.peer }

// WriteTo writes what the client sends to w until the client's end of
// stream, straight from the session's buffer: the relay's copy to the
// service needs no buffer of its own. It must not run beside Read.
func (s *session) WriteTo(w io.Writer) (int64, error) {
	var total int64
	s.mu.Lock()
	for {
		switch {
		case s.closed:
			s.mu.Unlock()
			return total, opError("read", net.ErrClosed)
		case isDone(s.rd.done()):
			s.mu.Unlock()
			return total, opError("read", os.ErrDeadlineExceeded)
		}
		if s.in.len() > 0 {
			p := s.in.peek(0, chunkSize)
			s.writing = true // p stays valid: Close leaves in alone
			s.mu.Unlock()
			n, err := w.Write(p) // only this goroutine drops bytes from in
			total += int64(n)
			s.mu.Lock()
			s.writing = false
			if s.closed {
				s.in.reset()
			} else {
				s.in.drop(n)
				s.broadcast()
			}
			if err != nil {
				s.mu.Unlock()
				return total, err
			}
			continue
		}
		if s.in.err != nil {
			err := s.in.err
			s.mu.Unlock()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		s.await(s.rd.done())
	}
}
