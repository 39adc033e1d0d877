package porthole_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole"
)

// TestListenerAccept mounts a Listener on a mux beside another handler and
// checks that each Dial to its path arrives from Accept as its own tunnel.
func TestListenerAccept(t *testing.T) {
	l := porthole.NewListener(nil)
	mux := http.NewServeMux()
	mux.Handle("/tunnel", l)
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") })
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		l.Close()
		srv.Close()
	})

	for _, msg := range []string{"first", "second", "third"} {
		acc := acceptAsync(l)
		client := mustDial(t, srv.URL+"/tunnel", nil, waitLimit)
		server, err := awaitAccept(t, acc)
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		server.SetDeadline(time.Now().Add(waitLimit))
		echoBetween(t, client, server, msg)
		echoBetween(t, server, client, strings.ToUpper(msg))
		server.Close()
		if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("after the server closed the tunnel the client read %d, %v; want EOF", n, err)
		}
	}
}

// echoBetween writes msg on from and checks that to reads it.
func echoBetween(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(from, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

// TestListenerCloseWakesAccept checks that Close ends a waiting Accept with
// an error wrapping net.ErrClosed, and that the handler then answers 503.
func TestListenerCloseWakesAccept(t *testing.T) {
	l, url, d := listenerServer(t, false)
	waiting := acceptAsync(l)
	for range 2 { // closing twice is harmless
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if _, err := awaitAccept(t, waiting); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want an error wrapping net.ErrClosed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a new Accept after Close: %v, want an error wrapping net.ErrClosed", err)
	}
	_, err := porthole.Dial(dialContext(t), url, d)
	var se *porthole.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("Dial to a closed Listener: %v, want a 503 StatusError", err)
	}
}

// TestListenerCloseDropsUnaccepted checks that a tunnel no Accept took is
// closed by Close, so its client sees EOF.
func TestListenerCloseDropsUnaccepted(t *testing.T) {
	l, url, d := listenerServer(t, false)
	orphan := mustDial(t, url, d, waitLimit) // the handshake is done; no Accept takes it
	l.Close()
	if n, err := orphan.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("a tunnel left unaccepted read %d, %v after Close; want EOF", n, err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want an error wrapping net.ErrClosed", err)
	}
}
