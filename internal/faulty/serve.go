package faulty

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// errResponseDropped is what the upstream transport returns in place of
// an answer it read and dropped.
var errResponseDropped = errors.New("faulty: response dropped")

// serve handles one client request: it decides the request's fault, then
// drops the request or forwards it.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		panic(http.ErrAbortHandler)
	}
	defer p.active.Done()
	p.count(func(c *Counts) { c.Requests++ })

	if p.opts.Match == nil || p.opts.Match(r) {
		a, b := p.dice.roll()
		switch {
		case a < p.opts.DropRequest:
			// Read the whole request, as a proxy that failed to forward
			// it would have, then lose it.
			io.Copy(io.Discard, r.Body)
			p.count(func(c *Counts) { c.DroppedRequests++ })
			p.fail(w, r, "request")
			return
		case b < p.opts.DropResponse:
			r = r.WithContext(withDropResponse(r.Context()))
		}
	}
	p.rp.ServeHTTP(w, r)
}

// fail loses the exchange: it closes the client's connection without an
// answer, or answers 502 with Options.Error.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, what string) {
	p.t.Logf("faulty: dropped the %s of %s %s", what, r.Method, r.URL.RequestURI())
	if !p.opts.Error {
		// The server closes the connection and writes nothing.
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprintf(w, "faulty: %s dropped\n", what)
}

// reverseProxy forwards to upstream through p.toUp, dropping the answers
// of requests marked so.
func (p *Proxy) reverseProxy(upstream string) *httputil.ReverseProxy {
	target := &url.URL{Scheme: "http", Host: upstream}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     roundTripFunc(p.roundTrip),
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, errResponseDropped) {
				p.fail(w, r, "response")
				return
			}
			p.t.Logf("faulty: forwarding %s %s: %v", r.Method, r.URL.RequestURI(), err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}

// roundTrip forwards req to the upstream. For a request marked to lose
// its answer, it reads the whole answer and returns errResponseDropped
// instead (an upgrade's 101 is never dropped: it has no end to read to).
func (p *Proxy) roundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.toUp.RoundTrip(req)
	if err != nil || !dropResponse(req.Context()) || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the answer to drop: %w", err)
	}
	p.count(func(c *Counts) { c.DroppedResponses++ })
	return nil, errResponseDropped
}

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
