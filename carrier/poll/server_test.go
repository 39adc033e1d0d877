package poll_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

const noStore = "Cache-Control: no-store"

// recvAll receives from offset k until n bytes have arrived, acknowledging
// as it goes, and returns them with the offset reached.
func (w *wire) recvAll(k int64, n int) ([]byte, int64) {
	w.t.Helper()
	var got []byte
	for deadline := time.Now().Add(waitLimit); len(got) < n; {
		if time.Now().After(deadline) {
			w.t.Fatalf("received %d of %d bytes by the deadline: %q", len(got), n, got)
		}
		a := w.get(k).expect(w.t, http.StatusOK, noStore, poll.OffsetHeader+": "+strconv.FormatInt(k, 10))
		if a.Header.Get("Content-Length") != strconv.Itoa(len(a.body)) {
			w.t.Errorf("receive's Content-Length = %q for %d bytes", a.Header.Get("Content-Length"), len(a.body))
		}
		got = append(got, a.body...)
		k += int64(len(a.body))
	}
	return got, k
}

// TestSessionSteps walks one session through every step by hand against
// the echo: sends that overlap or repeat are taken once, a send beyond
// the held bytes is refused with the offset to resend from, a receive
// repeated with the same offset gets the same bytes again, the end of
// stream comes back after every byte, and close ends the session.
func TestSessionSteps(t *testing.T) {
	gw := startGateway(t, gateway.Options{
		Routes:   []gateway.Route{{Path: "/echo", Service: service.Echo{}}},
		LongPoll: 200 * time.Millisecond,
	})
	w := newWire(t, gw, "/echo")
	opened := w.open()
	opened.expect(t, http.StatusCreated, noStore, "Content-Length: 0")
	if raw, err := base64.RawURLEncoding.DecodeString(w.token); err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes in base64url: %v", w.token, err)
	}
	if strings.Contains(opened.Request.URL.String(), w.token) {
		t.Fatal("the token appears in a URL")
	}

	w.put(0, "hello").expect(t, http.StatusNoContent, noStore, poll.AckHeader+": 5")
	w.put(0, "hello").expect(t, http.StatusNoContent, poll.AckHeader+": 5")     // a retry
	w.put(3, "lo world").expect(t, http.StatusNoContent, poll.AckHeader+": 11") // overlaps
	w.put(20, "x").expect(t, http.StatusConflict, noStore, poll.AckHeader+": 11")

	got, k := w.recvAll(0, 11)
	if string(got) != "hello world" {
		t.Fatalf("echo = %q, want %q", got, "hello world")
	}
	// The answers were lost, say: the same receive gets the same bytes.
	again, _ := w.recvAll(0, 11)
	if string(again) != "hello world" {
		t.Fatalf("repeated receive = %q, want %q", again, "hello world")
	}
	// Nothing more: the long-poll ends empty.
	start := time.Now()
	empty := w.get(k).expect(t, http.StatusOK, noStore, "Content-Length: 0")
	if len(empty.body) != 0 || empty.Header.Get(poll.EOFHeader) != "" {
		t.Fatalf("idle receive = %q, EOF %q; want nothing", empty.body, empty.Header.Get(poll.EOFHeader))
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("idle receive answered after %v, want the long-poll wait (200ms)", waited)
	}
	// A receive behind the acknowledged offset is stale.
	w.get(0).expect(t, http.StatusConflict, noStore, poll.AckHeader+": 11")

	w.put(11, "", poll.EOFHeader+": 1").expect(t, http.StatusNoContent, poll.AckHeader+": 11")
	end := w.get(k).expect(t, http.StatusOK, poll.EOFHeader+": 1")
	if len(end.body) != 0 {
		t.Fatalf("bytes after the echo's end: %q", end.body)
	}
	w.do(http.MethodDelete, nil).expect(t, http.StatusNoContent, noStore)
	gone := w.get(k).expect(t, http.StatusNotFound, noStore)
	if !strings.Contains(string(gone.body), "no such poll session") {
		t.Errorf("404 body %q does not say the session is unknown", gone.body)
	}
}

// TestSessionPostForm: the same steps as POSTs naming the step in
// Porthole-Op, for intermediaries that refuse PUT and DELETE.
func TestSessionPostForm(t *testing.T) {
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{{Path: "/echo", Service: service.Echo{}}}})
	w := newWire(t, gw, "/echo")
	w.open()
	op := func(name string) string { return poll.OpHeader + ": " + name }
	w.do(http.MethodPost, []byte("abc"), op("send"), poll.OffsetHeader+": 0", poll.EOFHeader+": 1").
		expect(t, http.StatusNoContent, poll.AckHeader+": 3")
	var got []byte
	for k := int64(0); ; {
		a := w.do(http.MethodPost, nil, op("recv"), poll.AckHeader+": "+strconv.FormatInt(k, 10)).expect(t, http.StatusOK)
		got = append(got, a.body...)
		k += int64(len(a.body))
		if a.Header.Get(poll.EOFHeader) == "1" {
			break
		}
	}
	if string(got) != "abc" {
		t.Fatalf("echo = %q, want abc", got)
	}
	w.do(http.MethodPost, nil, op("close")).expect(t, http.StatusNoContent)
	w.do(http.MethodPost, nil, op("recv"), poll.AckHeader+": 3").expect(t, http.StatusNotFound)
	w.token = "x"
	w.do(http.MethodPost, nil, op("dance")).expect(t, http.StatusNotFound) // no session, no hint
}

// TestSessionTokens: a wrong token, or one from another route, gets 404
// and nothing more; tokens differ from session to session.
func TestSessionTokens(t *testing.T) {
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/a", Service: service.Echo{}},
		{Path: "/b", Service: service.Echo{}},
	}})
	a, b := newWire(t, gw, "/a"), newWire(t, gw, "/b")
	a.open()
	b.open()
	if a.token == b.token {
		t.Fatal("two sessions got the same token")
	}
	good := a.token
	flipped := []byte(good)
	flipped[10] ^= 1 // another base64url character
	for _, tok := range []string{string(flipped), good[:20], good + "A", b.token} {
		a.token = tok
		r := a.put(0, "x").expect(t, http.StatusNotFound, noStore)
		if strings.Contains(string(r.body), tok) {
			t.Errorf("the 404 repeats the token: %q", r.body)
		}
	}
	a.token = good
	a.put(0, "x").expect(t, http.StatusNoContent)
}

// backendWatch runs a TCP backend that reads until its connection ends
// and reports that end.
func backendWatch(t *testing.T) (addr string, ended <-chan error) {
	ch := make(chan error, 16)
	addr = testgw.TCPServer(t, func(c net.Conn) {
		_, err := io.Copy(io.Discard, c)
		ch <- err
		c.Close()
	})
	return addr, ch
}

func awaitEnd(t *testing.T, ended <-chan error, what string) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(waitLimit):
		t.Fatalf("the service's connection did not end after %s", what)
	}
}

// TestSessionExpiry: a session no request touches expires; its service
// connection is closed and its token is unknown from then on.
func TestSessionExpiry(t *testing.T) {
	addr, ended := backendWatch(t)
	gw := startGateway(t, gateway.Options{
		Routes:             []gateway.Route{{Path: "/svc", Service: &service.TCP{Addr: addr}}},
		SessionIdleTimeout: 300 * time.Millisecond,
	})
	w := newWire(t, gw, "/svc")
	w.open()
	awaitEnd(t, ended, "the idle timeout")
	w.get(0).expect(t, http.StatusNotFound)
	// Nothing is left to drain: shutdown returns at once, closing nothing.
	if err := gw.Stop(t, waitLimit); err != nil {
		t.Errorf("shutdown after the session expired: %v", err)
	}
}

// TestSessionCloseFrees: close ends the service connection at once.
func TestSessionCloseFrees(t *testing.T) {
	addr, ended := backendWatch(t)
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{{Path: "/svc", Service: &service.TCP{Addr: addr}}}})
	w := newWire(t, gw, "/svc")
	w.open()
	w.do(http.MethodDelete, nil).expect(t, http.StatusNoContent)
	awaitEnd(t, ended, "close")
}

// TestSessionCap: sessions beyond the gateway's tunnel cap get 503.
func TestSessionCap(t *testing.T) {
	gw := startGateway(t, gateway.Options{
		Routes:     []gateway.Route{{Path: "/echo", Service: service.Echo{}}},
		MaxTunnels: 2,
	})
	newWire(t, gw, "/echo").open()
	newWire(t, gw, "/echo").open()
	a := newWire(t, gw, "/echo").do(http.MethodPost, nil, poll.CarrierHeader+": poll").expect(t, http.StatusServiceUnavailable)
	if !strings.Contains(string(a.body), "cap") {
		t.Errorf("503 body %q does not name the cap", a.body)
	}
}

// TestSessionBackpressure: with a service that reads nothing, a session
// takes sends up to its buffer and no more; what it refused is taken once
// the service reads, and every byte arrives once.
func TestSessionBackpressure(t *testing.T) {
	const buffer = 64 << 10
	release := make(chan struct{})
	got := make(chan []byte, 1)
	gw := startGateway(t, gateway.Options{
		Routes: []gateway.Route{{Path: "/slow", Service: service.Handler(func(c net.Conn) {
			defer c.Close()
			<-release
			b, _ := io.ReadAll(c)
			got <- b
		})}},
		SessionBufferBytes: buffer,
		LongPoll:           200 * time.Millisecond,
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	w := newWire(t, gw, "/slow")
	w.open()
	data := bytes.Repeat([]byte("0123456789abcdef"), 6<<10) // 96 KiB
	w.put(0, string(data)).expect(t, http.StatusNoContent, poll.AckHeader+": "+strconv.Itoa(buffer))
	// Full: the send waits for room, gets none, and says so.
	w.put(buffer, string(data[buffer:])).expect(t, http.StatusNoContent, poll.AckHeader+": "+strconv.Itoa(buffer))
	close(release)
	// Now the service reads: what is left goes in, maybe over a few sends.
	for off := int64(buffer); off < int64(len(data)); {
		a := w.put(off, string(data[off:]), poll.EOFHeader+": 1").expect(t, http.StatusNoContent)
		ack, err := strconv.ParseInt(a.Header.Get(poll.AckHeader), 10, 64)
		if err != nil || ack <= off || ack > int64(len(data)) {
			t.Fatalf("send from %d acknowledged %q", off, a.Header.Get(poll.AckHeader))
		}
		off = ack
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			t.Fatalf("the service read %d bytes, want the %d sent, once, in order", len(b), len(data))
		}
	case <-time.After(waitLimit):
		t.Fatal("the service did not get the end of stream")
	}
}

// TestLongPollWakes: a waiting receive answers as soon as bytes arrive,
// not at the end of its wait.
func TestLongPollWakes(t *testing.T) {
	gw := startGateway(t, gateway.Options{
		Routes:   []gateway.Route{{Path: "/echo", Service: service.Echo{}}},
		LongPoll: waitLimit,
	})
	w := newWire(t, gw, "/echo")
	w.open()
	type result struct {
		a     answer
		after time.Duration
	}
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		a := w.get(0)
		ch <- result{a, time.Since(start)}
	}()
	w.put(0, "ping").expect(t, http.StatusNoContent)
	r := <-ch
	r.a.expect(t, http.StatusOK)
	if string(r.a.body) != "ping" || r.after > waitLimit/2 {
		t.Fatalf("receive = %q after %v, want ping well before the %v wait", r.a.body, r.after, waitLimit)
	}
}

// TestSessionRequestCap: a session takes 8 requests at a time; one more
// gets 429 with Retry-After while they last, and is taken again once they
// have ended. The 8 are receives that the service answers only when the
// test releases it, so they last however slowly they reach the gateway.
func TestSessionRequestCap(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	gw := startGateway(t, gateway.Options{
		Routes: []gateway.Route{{Path: "/held", Service: service.Handler(func(c net.Conn) {
			defer c.Close()
			<-release
			c.Write([]byte("x"))
			io.Copy(io.Discard, c)
		})}},
		LongPoll: waitLimit,
	})
	// Registered after the gateway's, so it runs before its shutdown.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	w := newWire(t, gw, "/held")
	w.open()
	done := make(chan answer, 8)
	for range 8 {
		go func() { done <- w.get(0) }()
	}
	// The receives reach the gateway when they do: probe with a request
	// that, once admitted, is answered at once (400: no offset).
	var capped answer
	for deadline := time.Now().Add(waitLimit / 2); ; {
		capped = w.do(http.MethodPut, nil)
		if capped.StatusCode == http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
	}
	capped.expect(t, http.StatusTooManyRequests, noStore, "Retry-After: 1")
	once.Do(func() { close(release) })
	for range 8 {
		if a := <-done; a.StatusCode != http.StatusOK || string(a.body) != "x" {
			t.Fatalf("a held receive ended with %d %q, want 200 x", a.StatusCode, a.body)
		}
	}
	w.do(http.MethodPut, nil).expect(t, http.StatusBadRequest)
}
