package main

import (
	"net"
	"strings"
	"testing"

	"github.com/porthole/porthole/internal/intermediary"
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

// printf abc | porthole connect -proxy http://squid URL: through a real
// squid, which passes no upgrade, connect falls back to poll by itself;
// and HTTP_PROXY does the same for a gateway named by a host only the
// proxy resolves.
func TestConnectProxy(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0")
	squid := "http://" + intermediary.Squid(t, intermediary.SquidOptions{Hosts: map[string]string{"gw.porthole.test": "127.0.0.1"}})
	r := runPorthole(t, []byte("abc"), "connect", "-proxy", squid, g.url+"/echo")
	if r.code != 0 || r.stdout != "abc" || !strings.Contains(r.stderr, "carrier=poll") {
		t.Fatalf("connect -proxy: exit %d, stdout %q, want 0, %q and poll chosen; stderr:\n%s", r.code, r.stdout, "abc", r.stderr)
	}
	// A proxy's refusal of a request in absolute form reads as the proxy's,
	// with its page's title rather than the page's first line.
	tiny := "http://" + intermediary.Tinyproxy(t, intermediary.TinyproxyOptions{BasicAuth: "u:p"})
	r = runPorthole(t, []byte("x"), "connect", "-carrier", "poll", "-proxy", tiny, g.url+"/echo")
	if r.code != 1 || !strings.Contains(r.stderr, "answered 407 Proxy Authentication Required") || strings.Contains(r.stderr, "<") {
		t.Fatalf("connect through a proxy that wants credentials: exit %d, want 1 and the proxy's 407 with its page's title; stderr:\n%s", r.code, r.stderr)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(g.url, "http://"))
	r = runPortholeEnv(t, []string{"HTTP_PROXY=" + squid}, []byte("abc"), "connect", "http://gw.porthole.test:"+port+"/echo")
	if r.code != 0 || r.stdout != "abc" || !strings.Contains(r.stderr, "carrier=poll") {
		t.Fatalf("HTTP_PROXY connect: exit %d, stdout %q, want 0, %q and poll chosen; stderr:\n%s", r.code, r.stdout, "abc", r.stderr)
	}
}
