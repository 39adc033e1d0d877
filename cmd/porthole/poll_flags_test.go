package main

import (
	"strings"
	"testing"
)

// printf abc | porthole connect -carrier poll URL, against a gateway with
// its poll settings given as flags; and the default, auto, says which
// carrier it chose.
func TestConnectPoll(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0", "-long-poll", "2s", "-session-idle", "5s")
	r := runPorthole(t, []byte("abc"), "connect", "-carrier", "poll", g.url+"/echo")
	if r.code != 0 || r.stdout != "abc" {
		t.Fatalf("connect -carrier poll: exit %d, stdout %q, want 0 and %q; stderr:\n%s", r.code, r.stdout, "abc", r.stderr)
	}
	r = runPorthole(t, []byte("abc"), "connect", g.url+"/echo")
	if r.code != 0 || r.stdout != "abc" || !strings.Contains(r.stderr, "carrier=raw") {
		t.Fatalf("connect: exit %d, stdout %q, want 0 and %q and the carrier chosen logged; stderr:\n%s", r.code, r.stdout, "abc", r.stderr)
	}
}
