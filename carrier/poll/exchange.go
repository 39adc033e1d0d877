package poll

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/internal/bufpool"
)

// send takes a send's body into the session: the bytes from the offset the
// gateway expects next, as many as its buffer holds, waiting up to the
// long-poll time for room when it is full. The answer's Porthole-Ack says
// how far the gateway now holds the stream; the client resends from there.
func (s *Server) send(w http.ResponseWriter, r *http.Request, sess *session) {
	off, err := parseOffset(r.Header, OffsetHeader)
	if err != nil {
		refuse(w, carrier.Errorf(http.StatusBadRequest, "%v", err))
		return
	}
	limit := int64(max(s.bufferBytes(), maxBodyBytes))
	tooLarge := carrier.Errorf(http.StatusRequestEntityTooLarge, "a send carries at most %d bytes", limit)
	if r.ContentLength > limit {
		refuse(w, tooLarge)
		return
	}
	body, release, err := readBody(w, r, limit)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			refuse(w, tooLarge)
		}
		return // the client went away mid-body; it will resend
	}
	defer release()
	eof := r.Header.Get(EOFHeader) == "1"

	ack, ok := sess.take(r, off, body, eof, s.longPoll())
	if !ok {
		refuse(w, &carrier.StatusError{
			Code:   http.StatusConflict,
			Reason: "this send starts beyond the bytes the gateway holds; resend from " + AckHeader,
			Header: ackHeader(ack),
		})
		return
	}
	answer(w, http.StatusNoContent, ackHeader(ack))
}

// readBody reads a send's body, into a pooled buffer when its length is
// known and fits one; release gives the buffer back.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), err error) {
	if r.ContentLength < 0 || r.ContentLength > maxBodyBytes {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		return body, func() {}, err
	}
	bp := bufpool.Get(maxBodyBytes)
	body = (*bp)[:r.ContentLength]
	if _, err := io.ReadFull(r.Body, body); err != nil {
		bufpool.Put(bp)
		return nil, nil, err
	}
	return body, func() { bufpool.Put(bp) }, nil
}

// take puts the bytes of body, which starts at stream offset off, that the
// session has not taken yet into its buffer, as many as fit, waiting up to
// wait for room while it is full. It returns the offset the session now
// expects next, and false when off lies beyond it.
func (sess *session) take(r *http.Request, off int64, body []byte, eof bool, wait time.Duration) (int64, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for {
		next := sess.in.next
		if off > next {
			return next, false
		}
		data := body[min(next-off, int64(len(body))):]
		if sess.closed || sess.in.err != nil {
			// The tunnel is over: nothing reads these bytes any more, so
			// they are taken and dropped; the client learns the end from
			// its receives.
			sess.in.next += int64(len(data))
			return sess.in.next, true
		}
		taken := sess.in.put(data)
		if taken == len(data) && eof {
			sess.in.end(io.EOF)
		}
		if taken > 0 || len(data) == 0 {
			sess.broadcast()
			return sess.in.next, true
		}
		// The buffer is full: wait for the service to read some.
		if sess.await(ctx.Done()) {
			return sess.in.next, true
		}
	}
}

// recv answers a receive: it drops the bytes the client acknowledges, then
// sends the bytes after them, waiting up to the long-poll time for some.
// The bytes stay in the session until a later receive acknowledges them.
func (s *Server) recv(w http.ResponseWriter, r *http.Request, sess *session) {
	k, err := parseOffset(r.Header, AckHeader)
	if err != nil {
		refuse(w, carrier.Errorf(http.StatusBadRequest, "%v", err))
		return
	}
	rep := sess.collect(r, k, s.longPoll())
	if rep.buf != nil {
		defer bufpool.Put(rep.buf)
	}
	switch {
	case rep.conflict:
		refuse(w, &carrier.StatusError{
			Code:   http.StatusConflict,
			Reason: "acknowledged offset " + strconv.FormatInt(k, 10) + " is outside the bytes the gateway holds (a stale or forged receive)",
			Header: ackHeader(rep.base),
		})
	case rep.err != nil:
		refuse(w, &carrier.StatusError{Code: http.StatusBadGateway, Reason: rep.err.Error(), Header: http.Header{ErrorHeader: {rep.err.Error()}}})
	default:
		h := http.Header{OffsetHeader: {strconv.FormatInt(k, 10)}}
		if rep.eof {
			h.Set(EOFHeader, "1")
		}
		answerBytes(w, h, rep.data)
	}
}

// reply is what a receive answers, gathered under the session's lock and
// sent after it is released.
type reply struct {
	data     []byte  // a copy of the bytes from the acknowledged offset, in buf
	buf      *[]byte // from bufpool, to give back once data is sent
	eof      bool    // the service's end of stream follows data
	err      error   // the stream broke after the acknowledged offset
	conflict bool    // the acknowledged offset is outside the held bytes
	base     int64   // the held bytes' first offset, for a conflict
}

// collect drops the bytes before k, which the client holds, and copies
// up to maxBodyBytes from k into a buffer from bufpool, waiting up to wait
// for some. A waiting receive holds no buffer.
func (sess *session) collect(r *http.Request, k int64, wait time.Duration) reply {
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	sess.mu.Lock()
	defer sess.mu.Unlock()
	out := &sess.out
	for {
		base := out.base
		if !out.ack(k) {
			return reply{conflict: true, base: base}
		}
		if out.base != base {
			sess.broadcast() // room for the relay's writes
		}
		if out.end() > k {
			bp := bufpool.Get(maxBodyBytes)
			n := out.copyFrom(*bp, k)
			return reply{data: (*bp)[:n], buf: bp, eof: out.eof && k+int64(n) == out.end()}
		}
		switch {
		case out.eof:
			return reply{eof: true}
		case out.err != nil:
			return reply{err: out.err}
		}
		if sess.await(ctx.Done()) {
			return reply{}
		}
	}
}

func ackHeader(off int64) http.Header {
	return http.Header{AckHeader: {strconv.FormatInt(off, 10)}}
}
