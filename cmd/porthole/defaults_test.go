//go:build linux

package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// serve without -route has the built-in /echo and /chat, and the page
// lists both.
func TestDefaultRoutes(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0")

	if r := runPorthole(t, []byte("abc"), "connect", g.url+"/echo"); r.code != 0 || r.stdout != "abc" {
		t.Fatalf("connect /echo: exit %d, stdout %q, want 0 and %q; stderr:\n%s", r.code, r.stdout, "abc", r.stderr)
	}
	// Alone in the room, over each carrier: the welcome, then EOF once
	// stdin's end has left the room.
	for i, url := range []string{g.url + "/chat", "ws://" + g.addr + "/chat"} {
		r := runPorthole(t, []byte("anyone here?\n"), "connect", url)
		if want := fmt.Sprintf("* you are guest%d; nobody else is here yet\n", i+1); r.code != 0 || r.stdout != want {
			t.Fatalf("connect %s: exit %d, stdout %q, want 0 and %q; stderr:\n%s", url, r.code, r.stdout, want, r.stderr)
		}
	}

	resp, err := http.Get(g.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"porthole connect " + g.url + "/echo", "porthole connect " + g.url + "/chat"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
