package faulty_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/faulty"
	"github.com/porthole/porthole/internal/testgw"
)

// upstream is a plain-HTTP server on loopback that records what reaches it.
type upstream struct {
	addr  string
	mu    sync.Mutex
	seen  []string            // "METHOD /path body" of each request
	conns map[string]struct{} // the client addresses requests came from
}

// startUpstream answers GET /big with size bytes, and anything else with
// "METHOD path body".
func startUpstream(t *testing.T, size int) *upstream {
	t.Helper()
	u := &upstream{conns: make(map[string]struct{})}
	srv, _ := testgw.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream reading the body: %v", err)
		}
		line := fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, body)
		u.mu.Lock()
		u.seen = append(u.seen, line)
		u.conns[r.RemoteAddr] = struct{}{}
		u.mu.Unlock()
		if r.URL.Path == "/big" {
			w.Write(bytes.Repeat([]byte("x"), size))
			return
		}
		io.WriteString(w, line)
	}), false)
	u.addr = srv.Listener.Addr().String()
	return u
}

// snapshot returns the requests seen and the number of connections they
// came on.
func (u *upstream) snapshot() ([]string, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...), len(u.conns)
}

// client returns an HTTP client with its own connections, bounded by
// testgw.WaitLimit, that goes through no proxy.
func client(t *testing.T, keepAlive bool) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testgw.WaitLimit}
}

// do sends method to path with body ("" for none), and returns the
// answer's status and body, or the error.
func do(c *http.Client, base, method, path, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestForwardsEverythingWithoutFaults(t *testing.T) {
	const size = 8 << 20
	up := startUpstream(t, size)
	p := faulty.Start(t, up.addr, faulty.Options{Seed: 1})
	c := client(t, true)

	if code, body, err := do(c, p.URL(), "GET", "/a", ""); err != nil || code != 200 || body != "GET /a " {
		t.Errorf("GET: %d %q %v", code, body, err)
	}
	if code, body, err := do(c, p.URL(), "PUT", "/b", "hello"); err != nil || code != 200 || body != "PUT /b hello" {
		t.Errorf("PUT: %d %q %v", code, body, err)
	}
	code, body, err := do(c, p.URL(), "GET", "/big", "")
	if err != nil || code != 200 || body != strings.Repeat("x", size) {
		t.Errorf("GET /big: %d, %d bytes, %v", code, len(body), err)
	}
	// Go's Transport returns a connection to its pool only after the
	// proxy has read the body's end, which can come after the client has
	// its answer and sent the next request: that one may then go on a new
	// connection. So keep-alive shows as most requests reusing one, not
	// all of them.
	const more = 9
	for i := range more {
		if code, _, err := do(c, p.URL(), "GET", "/a", ""); err != nil || code != 200 {
			t.Fatalf("GET %d: %d %v", i, code, err)
		}
	}
	requests := 3 + more
	if got, want := p.Counts(), (faulty.Counts{Requests: requests}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if _, conns := up.snapshot(); conns > requests/3 {
		t.Errorf("the upstream accepted %d connections for %d requests in a row, want them kept alive", conns, requests)
	}
}

func TestDropRequest(t *testing.T) {
	up := startUpstream(t, 0)
	p := faulty.Start(t, up.addr, faulty.Options{DropRequest: 1})
	c := client(t, true)

	for _, m := range []string{"GET", "PUT"} {
		code, body, err := do(c, p.URL(), m, "/x", "payload")
		if err == nil {
			t.Errorf("%s: answered %d %q, want an error and no answer", m, code, body)
		}
	}
	if seen, _ := up.snapshot(); len(seen) != 0 {
		t.Errorf("the upstream saw %q", seen)
	}
	if got, want := p.Counts(), (faulty.Counts{Requests: 2, DroppedRequests: 2}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}

func TestDropResponse(t *testing.T) {
	up := startUpstream(t, 0)
	p := faulty.Start(t, up.addr, faulty.Options{DropResponse: 1})
	c := client(t, true)

	code, body, err := do(c, p.URL(), "PUT", "/x", "payload")
	if err == nil {
		t.Errorf("answered %d %q, want an error and no answer", code, body)
	}
	if seen, _ := up.snapshot(); len(seen) != 1 || seen[0] != "PUT /x payload" {
		t.Errorf("the upstream saw %q, want the PUT once", seen)
	}
	if got, want := p.Counts(), (faulty.Counts{Requests: 1, DroppedResponses: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}

func TestErrorAnswers502(t *testing.T) {
	for _, opts := range []faulty.Options{
		{DropRequest: 1, Error: true},
		{DropResponse: 1, Error: true},
	} {
		up := startUpstream(t, 0)
		p := faulty.Start(t, up.addr, opts)
		code, body, err := do(client(t, true), p.URL(), "POST", "/x", "payload")
		if err != nil || code != http.StatusBadGateway || !strings.HasPrefix(body, "faulty: ") {
			t.Errorf("%+v: %d %q %v, want 502 with faulty's reason", opts, code, body, err)
		}
		seen, _ := up.snapshot()
		if reached := opts.DropResponse == 1; (len(seen) == 1) != reached {
			t.Errorf("%+v: the upstream saw %q", opts, seen)
		}
	}
}

func TestMatchLimitsFaults(t *testing.T) {
	up := startUpstream(t, 0)
	p := faulty.Start(t, up.addr, faulty.Options{
		DropRequest: 1,
		Match:       func(r *http.Request) bool { return r.Method == http.MethodPut },
	})
	c := client(t, true)
	if _, _, err := do(c, p.URL(), "GET", "/x", ""); err != nil {
		t.Errorf("GET, not matched: %v", err)
	}
	if _, _, err := do(c, p.URL(), "PUT", "/x", "p"); err == nil {
		t.Error("PUT, matched: no error")
	}
	if got, want := p.Counts(), (faulty.Counts{Requests: 2, DroppedRequests: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}

// TestSeedReproducesFaults sends the same requests one at a time through
// proxies with the same seed and a mix of faults: the faults fall on the
// same requests every time.
func TestSeedReproducesFaults(t *testing.T) {
	run := func(seed int64) (faulty.Counts, string) {
		up := startUpstream(t, 0)
		p := faulty.Start(t, up.addr, faulty.Options{Seed: seed, DropRequest: 0.2, DropResponse: 0.25})
		c := client(t, true)
		var outcome strings.Builder
		for i := range 100 {
			// POST: the client never replays it on a new connection.
			if _, _, err := do(c, p.URL(), "POST", fmt.Sprint("/", i), "b"); err != nil {
				outcome.WriteByte('x')
			} else {
				outcome.WriteByte('.')
			}
		}
		seen, _ := up.snapshot()
		if got := p.Counts(); len(seen) != got.Requests-got.DroppedRequests {
			t.Errorf("seed %d: the upstream saw %d requests, counts %+v", seed, len(seen), got)
		}
		return p.Counts(), outcome.String()
	}
	c1, o1 := run(7)
	c2, o2 := run(7)
	if c1 != c2 || o1 != o2 {
		t.Errorf("seed 7 twice:\n%+v %s\n%+v %s", c1, o1, c2, o2)
	}
	if c1.DroppedRequests == 0 || c1.DroppedResponses == 0 || c1.Requests != 100 {
		t.Errorf("counts %+v: want 100 requests and faults of both kinds", c1)
	}
	if c3, o3 := run(8); c3 == c1 && o3 == o1 {
		t.Errorf("seeds 7 and 8 gave the same faults: %s", o1)
	}
}

// TestStopCancelsRequestsInFlight ends a test with a request waiting on
// the upstream: the proxy's cleanup cancels it rather than wait for the
// upstream, and the client gets an error.
func TestStopCancelsRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	srv, _ := testgw.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), false)
	defer close(release)

	errc := make(chan error, 1)
	c := client(t, false)
	t.Run("proxy", func(t *testing.T) {
		p := faulty.Start(t, srv.Listener.Addr().String(), faulty.Options{})
		go func() {
			_, _, err := do(c, p.URL(), "GET", "/wait", "")
			errc <- err
		}()
		select {
		case <-arrived:
		case <-time.After(testgw.WaitLimit):
			t.Fatal("the request never reached the upstream")
		}
	})
	select {
	case err := <-errc:
		if err == nil {
			t.Error("the request in flight got an answer after the proxy stopped")
		}
	case <-time.After(testgw.WaitLimit):
		t.Error("the client still waits after the proxy stopped")
	}
}

// TestClientReplaysIdempotentRequests pins what the package doc says of
// Go's client: a GET dropped on a reused connection is sent again on a new
// one (where this proxy drops it again), a PUT is not.
func TestClientReplaysIdempotentRequests(t *testing.T) {
	up := startUpstream(t, 0)
	p := faulty.Start(t, up.addr, faulty.Options{
		DropRequest: 1,
		Match:       func(r *http.Request) bool { return r.URL.Path == "/drop" },
	})
	c := client(t, true)
	for _, tc := range []struct {
		method   string
		attempts int
	}{{"GET", 2}, {"PUT", 1}} {
		// An answered request first, so the next one reuses its connection.
		if _, _, err := do(c, p.URL(), "GET", "/ok", ""); err != nil {
			t.Fatal(err)
		}
		before := p.Counts()
		if _, _, err := do(c, p.URL(), tc.method, "/drop", "x"); err == nil {
			t.Errorf("%s: no error, though every attempt was dropped", tc.method)
		}
		if n := p.Counts().DroppedRequests - before.DroppedRequests; n != tc.attempts {
			t.Errorf("%s on a reused connection: sent %d times, want %d", tc.method, n, tc.attempts)
		}
	}
}
