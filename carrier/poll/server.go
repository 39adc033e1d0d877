package poll

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/porthole/porthole/carrier"
)

// Server is the poll carrier's server side for one route: it opens
// sessions and answers their requests. Its zero value is ready to use with
// the defaults each field names; the fields must not change once it
// serves.
type Server struct {
	// LongPoll is how long a receive waits for bytes before it answers
	// with none. Keep it under the idle timeouts of intermediaries (nginx
	// 60 s, CDNs 100 s). Zero means 25 seconds.
	LongPoll time.Duration
	// IdleTimeout ends a session no request has touched for this long,
	// closing its service connection. Zero means 60 seconds.
	IdleTimeout time.Duration
	// BufferBytes bounds each session's buffer in each direction: a full
	// buffer slows the sender. Zero means 1 MiB.
	BufferBytes int
	// MaxSessions caps the sessions held, counting those whose tunnel has
	// ended but whose client has not collected its end yet; beyond it an
	// opening request gets 503. Zero means 10,000.
	MaxSessions int

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]*session
	opens    map[[sha256.Size]byte]*session // by the SHA-256 of their OpenHeader
}

// Name returns "poll".
func (*Server) Name() string { return Name }

// Wants reports whether r opens a poll session: a POST naming the carrier
// in Porthole-Carrier, outside any session.
func (*Server) Wants(r *http.Request) bool {
	return r.Method == http.MethodPost && r.Header.Get(CarrierHeader) == Name && r.Header.Get(SessionHeader) == ""
}

// Check refuses an opening request with a body, or one beyond the cap.
func (s *Server) Check(r *http.Request) error {
	if r.ContentLength != 0 {
		return carrier.Errorf(http.StatusBadRequest, "the request that opens a poll session has no body; send bytes with PUT once it is open")
	}
	if s.count() >= s.maxSessions() {
		return s.full()
	}
	return nil
}

// Accept opens a session, answers 201 Created with its token, and returns
// the session as the tunnel's connection. The caller closes it; the
// session itself lasts until the client closes it or it expires.
func (s *Server) Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	var secret [32]byte
	rand.Read(secret[:]) // never fails (crypto/rand)
	token := base64.RawURLEncoding.EncodeToString(secret[:])
	key := sha256.Sum256([]byte(token))

	sess := &session{
		stream:      newStream(s.bufferBytes()),
		token:       token,
		local:       localAddr(r),
		peer:        remoteAddr(r),
		idleTimeout: s.idleTimeout(),
		finished:    make(chan struct{}),
	}
	openKey, named := openKeyOf(r)
	sess.forget = func() { s.remove(key, openKey, sess) }
	sess.expire = time.AfterFunc(sess.idleTimeout, sess.timeout)

	s.mu.Lock()
	if len(s.sessions) >= s.maxSessions() {
		s.mu.Unlock()
		sess.expire.Stop()
		err := s.full()
		answer(w, http.StatusServiceUnavailable, nil)
		return nil, err
	}
	if s.sessions == nil {
		s.sessions = make(map[[sha256.Size]byte]*session)
		s.opens = make(map[[sha256.Size]byte]*session)
	}
	s.sessions[key] = sess
	if named {
		s.opens[openKey] = sess
	}
	s.mu.Unlock()

	answer(w, http.StatusCreated, http.Header{SessionHeader: {token}})
	return sess, nil
}

// InSession reports whether r belongs to a session: it carries a token,
// or it repeats the open of a session that is open already (its first
// answer was lost on the way).
func (s *Server) InSession(r *http.Request) bool {
	return r.Header.Get(SessionHeader) != "" || (s.Wants(r) && s.reopened(r) != nil)
}

// reopened returns the session r opened before, by its OpenHeader.
func (s *Server) reopened(r *http.Request) *session {
	key, named := openKeyOf(r)
	if !named {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens[key]
}

// openKeyOf is the key of r's OpenHeader in Server.opens; named is false
// when r names no open, or names it past maxOpenIDBytes.
func openKeyOf(r *http.Request) (key [sha256.Size]byte, named bool) {
	id := r.Header.Get(OpenHeader)
	if id == "" || len(id) > maxOpenIDBytes {
		return key, false
	}
	return sha256.Sum256([]byte(id)), true
}

// ServeSession answers a request in a session: a send, a receive or a
// close. An unknown or expired token gets 404 and nothing more.
func (s *Server) ServeSession(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(SessionHeader) == "" {
		if sess := s.reopened(r); sess != nil {
			answer(w, http.StatusCreated, http.Header{SessionHeader: {sess.token}})
			return
		}
	}
	sess := s.lookup(r.Header.Get(SessionHeader))
	code := http.StatusNotFound
	if sess != nil {
		code = sess.begin()
	}
	switch code {
	case http.StatusNotFound:
		refuse(w, carrier.Errorf(http.StatusNotFound, "no such poll session: it ended or expired; open a new one"))
		return
	case http.StatusTooManyRequests:
		e := carrier.Errorf(code, "the session has %d requests in progress already; retry when one has ended", maxActive)
		e.Header = http.Header{"Retry-After": {"1"}}
		refuse(w, e)
		return
	}
	defer sess.finish()
	switch opOf(r) {
	case opSend:
		s.send(w, r, sess)
	case opRecv:
		s.recv(w, r, sess)
	case opClose:
		sess.end(io.EOF, errClientClosed)
		answer(w, http.StatusNoContent, nil)
	default:
		e := carrier.Errorf(http.StatusMethodNotAllowed, "a poll session takes PUT (send), GET (receive), DELETE (close), or POST with %s: send, recv or close", OpHeader)
		e.Header = http.Header{"Allow": {"GET, PUT, DELETE, POST"}}
		refuse(w, e)
	}
}

// lookup finds the session of token. The map is keyed by the token's
// SHA-256, so how long the lookup takes says nothing about how much of a
// guess matched; the token itself is then compared in constant time.
func (s *Server) lookup(token string) *session {
	key := sha256.Sum256([]byte(token))
	s.mu.Lock()
	sess := s.sessions[key]
	s.mu.Unlock()
	if sess == nil || subtle.ConstantTimeCompare([]byte(sess.token), []byte(token)) != 1 {
		return nil
	}
	return sess
}

func (s *Server) remove(key, openKey [sha256.Size]byte, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[key] == sess {
		delete(s.sessions, key)
	}
	if s.opens[openKey] == sess {
		delete(s.opens, openKey)
	}
}

// Sessions returns the number of sessions held: open tunnels, and ended
// ones whose client has not collected the end yet.
func (s *Server) Sessions() int { return s.count() }

func (s *Server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Server) full() *carrier.StatusError {
	return carrier.Errorf(http.StatusServiceUnavailable, "the route is at its cap of %d poll sessions; retry later", s.maxSessions())
}

func (s *Server) longPoll() time.Duration    { return or(s.LongPoll, DefaultLongPoll) }
func (s *Server) idleTimeout() time.Duration { return or(s.IdleTimeout, DefaultIdleTimeout) }
func (s *Server) bufferBytes() int           { return or(s.BufferBytes, DefaultBufferBytes) }
func (s *Server) maxSessions() int           { return or(s.MaxSessions, 10_000) }

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// answer sends a complete response with headers h: never cached, marked as
// the gateway's own, with a Content-Length (zero) when it has no body.
func answer(w http.ResponseWriter, code int, h http.Header) {
	mark(w, h)
	if code != http.StatusNoContent {
		w.Header().Set("Content-Length", "0")
	}
	w.WriteHeader(code)
}

// answerBytes sends 200 with body p.
func answerBytes(w http.ResponseWriter, h http.Header, p []byte) {
	mark(w, h)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(p)))
	w.WriteHeader(http.StatusOK)
	w.Write(p)
}

// refuse sends e, marked as the gateway's own.
func refuse(w http.ResponseWriter, e *carrier.StatusError) {
	mark(w, nil)
	e.Write(w)
}

// mark sets h and the headers every poll answer carries: Cache-Control
// no-store, and the protocol version, by which the client tells the
// gateway's answers from an intermediary's.
func mark(w http.ResponseWriter, h http.Header) {
	wh := w.Header()
	for k, v := range h {
		wh[k] = v
	}
	wh.Set("Cache-Control", "no-store")
	wh.Set(carrier.VersionHeader, carrier.Version)
}

func localAddr(r *http.Request) net.Addr {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return a
}

func remoteAddr(r *http.Request) net.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}
