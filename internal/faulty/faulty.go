// Package faulty runs a reverse proxy for tests that loses requests and
// responses on purpose, so a test can check that a client stays lossless
// and exactly-once when HTTP exchanges fail half way.
//
// Start it in front of a plain-HTTP server and point the client at its URL:
//
//	p := faulty.Start(t, gatewayAddr, faulty.Options{Seed: 1, DropRequest: 0.1, DropResponse: 0.1})
//	... the client talks to p.URL() ...
//	if c := p.Counts(); c.DroppedRequests == 0 { t.Error("no request was dropped") }
//
// A dropped request is read, body and all, and never forwarded; a dropped
// response is forwarded, the upstream's whole answer read, and never
// delivered, so the upstream acted on a request whose client never learns
// of it. Either way the client's connection is closed without an answer,
// or, with Options.Error, answered 502 Bad Gateway as a real proxy would.
//
// Faults are drawn from a random source seeded by Options.Seed (the seed
// is logged), so a client that sends one request at a time meets the same
// faults on every run with that seed. Concurrent requests draw in the
// order they arrive, which varies.
//
// Go's http.Transport replays a request that is idempotent (GET, HEAD,
// OPTIONS, TRACE, or one with an Idempotency-Key header) and has no body
// or a GetBody, when the reused keep-alive connection it was sent on
// closes before an answer. Such a client may see no error for a drop:
// Counts counts each attempt.
package faulty

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds the proxy's wait for its handlers at the end of a test
// and its dials to the upstream.
const waitLimit = 10 * time.Second

// Options says which exchanges the proxy loses. The zero value forwards
// everything.
type Options struct {
	// Seed seeds the random source that decides the faults. Zero means a
	// random seed; either way it is logged, so a failing run can be
	// repeated.
	Seed int64
	// DropRequest is the probability, from 0 to 1, that a request is read
	// and not forwarded.
	DropRequest float64
	// DropResponse is the probability, from 0 to 1, that a forwarded
	// request's answer is read from the upstream and not delivered. It
	// applies to the requests DropRequest spared.
	DropResponse float64
	// Error answers a lost exchange with 502 Bad Gateway and a one-line
	// body, as a real proxy does when its upstream fails, instead of
	// closing the connection with no answer.
	Error bool
	// Match limits the faults to the requests it reports true for; the
	// others are always forwarded and draw nothing from the random
	// source. nil means every request may be faulted. It must not read
	// the body.
	Match func(*http.Request) bool
}

// Counts is what the proxy has done so far.
type Counts struct {
	Requests         int // requests received from clients
	DroppedRequests  int // requests read and never forwarded
	DroppedResponses int // answers read from the upstream and never delivered
}

// Proxy is a running faulty reverse proxy on a loopback port.
type Proxy struct {
	t      testing.TB
	opts   Options
	addr   string
	srv    *http.Server
	rp     *httputil.ReverseProxy
	toUp   *http.Transport
	dice   *dice
	mu     sync.Mutex // guards counts, closed, and handlers' Add
	counts Counts
	closed bool
	active sync.WaitGroup // handlers running
}

// Start runs a faulty HTTP/1.1 reverse proxy on 127.0.0.1 that forwards
// to upstream, the host:port of a plain-HTTP server, over keep-alive
// connections. The request's Host header is passed on as the client sent
// it. The proxy stops when the test ends, after its running handlers
// return.
func Start(t testing.TB, upstream string, opts Options) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed := opts.Seed
	if seed == 0 {
		seed = randomSeed()
	}
	p := &Proxy{t: t, opts: opts, addr: ln.Addr().String(), dice: newDice(seed)}
	p.toUp = upstreamTransport()
	p.rp = p.reverseProxy(upstream)
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: waitLimit}
	t.Logf("faulty: proxy %s → %s, seed %d, drop request %g, drop response %g", p.addr, upstream, seed, opts.DropRequest, opts.DropResponse)
	go p.srv.Serve(ln)
	t.Cleanup(p.stop)
	return p
}

// URL returns the proxy's base URL, "http://127.0.0.1:PORT".
func (p *Proxy) URL() string { return "http://" + p.addr }

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Counts returns what the proxy has done so far.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts
}

// count applies f to the counts under the lock.
func (p *Proxy) count(f func(*Counts)) {
	p.mu.Lock()
	f(&p.counts)
	p.mu.Unlock()
}

// enter registers a handler, unless the proxy is stopping.
func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.active.Add(1)
	return true
}

// stop closes the listener and every client connection, which cancels the
// requests in flight, then waits for the handlers to return.
func (p *Proxy) stop() {
	p.srv.Close()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitLimit):
		p.t.Errorf("faulty: handlers still running %v after the proxy closed", waitLimit)
	}
	p.toUp.CloseIdleConnections()
}

// upstreamTransport keeps connections to the upstream alive and never
// goes through a proxy of its own.
func upstreamTransport() *http.Transport {
	d := &net.Dialer{Timeout: waitLimit}
	return &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
}

// randomSeed returns a nonzero seed.
func randomSeed() int64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if s := int64(binary.LittleEndian.Uint64(b[:]) >> 1); s != 0 {
			return s
		}
	}
}

// dice is the seeded random source the proxy draws faults from.
type dice struct {
	mu  sync.Mutex
	rng *mrand.Rand
}

func newDice(seed int64) *dice {
	return &dice{rng: mrand.New(mrand.NewPCG(uint64(seed), 0))}
}

// roll draws two numbers in [0, 1) at once, so each request takes the same
// share of the sequence whatever the probabilities.
func (d *dice) roll() (a, b float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64(), d.rng.Float64()
}

// ctxKey marks a request whose answer is to be dropped.
type ctxKey struct{}

func withDropResponse(ctx context.Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, true)
}

func dropResponse(ctx context.Context) bool {
	v, _ := ctx.Value(ctxKey{}).(bool)
	return v
}
