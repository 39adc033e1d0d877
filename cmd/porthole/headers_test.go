//go:build linux

package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/internal/relay"
)

// TestConnectHeaders: each -H reaches the server with the handshake,
// repeated names included, and porthole's own headers stay.
func TestConnectHeaders(t *testing.T) {
	t.Parallel()
	l := porthole.NewListener(nil)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go relay.Loop(c)
		}
	}()
	seen := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		l.ServeHTTP(w, r)
	}))
	defer srv.Close()

	r := runPorthole(t, []byte("abc"), "connect", "-H", "X-Team: blue", "-H", "X-Team: green", "-H", "Authorization:Bearer t0ken", srv.URL+"/anything")
	if r.code != 0 || r.stdout != "abc" {
		t.Fatalf("connect: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	h := <-seen
	if got := h.Values("X-Team"); len(got) != 2 || got[0] != "blue" || got[1] != "green" {
		t.Errorf("X-Team = %q, want [blue green]", got)
	}
	if got := h.Get("Authorization"); got != "Bearer t0ken" {
		t.Errorf("Authorization = %q, want %q", got, "Bearer t0ken")
	}
	if h.Get("Upgrade") != "porthole" || h.Get("Porthole-Version") != "1" {
		t.Errorf("porthole's own headers lost: Upgrade %q, Porthole-Version %q", h.Get("Upgrade"), h.Get("Porthole-Version"))
	}

	bad := runPorthole(t, nil, "connect", "-H", "no colon", srv.URL+"/x")
	if bad.code == 0 {
		t.Errorf("-H 'no colon' was accepted; stderr:\n%s", bad.stderr)
	}
}
