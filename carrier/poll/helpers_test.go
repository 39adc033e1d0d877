package poll_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 10 * time.Second

// wire speaks the poll protocol by hand to one route of a gateway, so
// tests can send what porthole's client never would.
type wire struct {
	t     *testing.T
	url   string
	token string
	hc    *http.Client
}

func newWire(t *testing.T, gw *testgw.Gateway, path string) *wire {
	hc := &http.Client{Timeout: waitLimit, Transport: &http.Transport{}}
	w := &wire{t: t, url: gw.URL + path, hc: hc}
	t.Cleanup(func() {
		// Close the session, or the gateway's shutdown waits for it.
		if w.token != "" {
			if req, err := http.NewRequest(http.MethodDelete, w.url, nil); err == nil {
				req.Header.Set(poll.SessionHeader, w.token)
				if resp, err := hc.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
		hc.CloseIdleConnections()
	})
	return w
}

// answer is a response with its body read.
type answer struct {
	*http.Response
	body []byte
}

// do sends method with headers "Name: value" and body, in the session
// when one is open.
func (w *wire) do(method string, body []byte, headers ...string) answer {
	w.t.Helper()
	req, err := http.NewRequest(method, w.url+"?n="+strconv.FormatInt(time.Now().UnixNano(), 36), bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	if w.token != "" {
		req.Header.Set(poll.SessionHeader, w.token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		w.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("%s: reading the body: %v", method, err)
	}
	return answer{resp, b}
}

// open opens a session and keeps its token.
func (w *wire) open() answer {
	w.t.Helper()
	a := w.do(http.MethodPost, nil, poll.CarrierHeader+": poll", "Porthole-Version: 1")
	if a.StatusCode != http.StatusCreated {
		w.t.Fatalf("open = %d %q, want 201", a.StatusCode, a.body)
	}
	w.token = a.Header.Get(poll.SessionHeader)
	return a
}

func (w *wire) put(off int64, body string, headers ...string) answer {
	w.t.Helper()
	return w.do(http.MethodPut, []byte(body), append(headers, poll.OffsetHeader+": "+strconv.FormatInt(off, 10))...)
}

func (w *wire) get(ack int64, headers ...string) answer {
	w.t.Helper()
	return w.do(http.MethodGet, nil, append(headers, poll.AckHeader+": "+strconv.FormatInt(ack, 10))...)
}

// expect checks an answer's status, and headers given as "Name: value".
func (a answer) expect(t *testing.T, code int, headers ...string) answer {
	t.Helper()
	if a.StatusCode != code {
		t.Fatalf("%s %s = %d %q, want %d", a.Request.Method, a.Request.URL.Path, a.StatusCode, a.body, code)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if got := a.Header.Get(k); got != v {
			t.Errorf("%s answer's %s = %q, want %q", a.Request.Method, k, got, v)
		}
	}
	return a
}

// startGateway runs a gateway with the given poll settings and routes.
func startGateway(t *testing.T, opts gateway.Options) *testgw.Gateway {
	t.Helper()
	return testgw.Start(t, opts)
}
