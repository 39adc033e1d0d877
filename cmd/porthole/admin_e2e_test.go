//go:build linux

package main

import (
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var adminURLRe = regexp.MustCompile(`msg="admin listening" url=(http://\S+)/`)

// serve -admin: /healthz, /readyz and /metrics on a listener of their own.
// A tunnel and a refusal show in the metrics; while SIGTERM drains an open
// tunnel, /readyz answers 503 and /healthz 200, and the listener goes
// only once the gateway has stopped.
func TestServeAdmin(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	admin := g.waitLog(adminURLRe)[1]
	expectAnswer(t, admin+"/healthz", 200, "ok\n")
	expectAnswer(t, admin+"/readyz", 200, "ok\n")

	r := runPorthole(t, []byte("abc"), "connect", "-carrier", "raw", g.url+"/echo")
	if r.code != 0 || r.stdout != "abc" {
		t.Fatalf("connect: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	g.waitCount(tunnelClosedRe, 1)
	expectAnswer(t, g.url+"/nope", 404, "no route /nope")
	expectMetrics(t, admin,
		`porthole_tunnels_opened_total{carrier="raw",route="/echo"} 1`,
		`porthole_tunnels_open{carrier="raw",route="/echo"} 0`,
		`porthole_tunnel_bytes_total{carrier="raw",direction="in",route="/echo"} 3`,
		`porthole_tunnel_bytes_total{carrier="raw",direction="out",route="/echo"} 3`,
		`porthole_service_dial_seconds_count{route="/echo"} 1`,
		`porthole_handshake_failures_total{reason="404",route=""} 1`,
		`porthole_poll_sessions{route="/chat"} 0`,
		`porthole_poll_sessions{route="/echo"} 0`,
		"go_goroutines ", "process_open_fds ",
	)

	stdin, in := io.Pipe()
	defer in.Close()
	c := startPorthole(t, stdin, "connect", "-carrier", "raw", g.url+"/echo")
	io.WriteString(in, "open\n")
	c.waitOutput("open\n")

	g.signal(syscall.SIGTERM)
	g.waitLog(regexp.MustCompile(`shutting down`))
	awaitAnswer(t, admin+"/readyz", http.StatusServiceUnavailable)
	expectAnswer(t, admin+"/readyz", 503, "draining")
	expectAnswer(t, admin+"/healthz", 200, "ok\n")
	expectMetrics(t, admin, `porthole_tunnels_open{carrier="raw",route="/echo"} 1`)

	in.Close()
	if code := c.wait(); code != 0 {
		t.Errorf("connect exited %d after its stdin ended, want 0", code)
	}
	if code := g.wait(); code != 0 {
		t.Errorf("serve exited %d, want 0", code)
	}
	g.waitLog(regexp.MustCompile(`msg=stopped`))
	if _, err := httpClient.Get(admin + "/healthz"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("the admin listener after serve exited: %v, want connection refused", err)
	}
}

// serve -log-format json -log-level debug: every line is JSON, Debug ones
// included, and the tunnel's line says how it ended.
func TestServeLogFlags(t *testing.T) {
	t.Parallel()
	p := startPorthole(t, nil, "serve", "-listen", "127.0.0.1:0", "-log-format", "json", "-log-level", "debug")
	url := p.waitLog(regexp.MustCompile(`\{"time":"[^"]+","level":"INFO","msg":"listening","url":"(http://\S+)/"\}`))[1]
	if r := runPorthole(t, []byte("abc"), "connect", url+"/echo"); r.code != 0 || r.stdout != "abc" {
		t.Fatalf("connect: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	p.waitLog(regexp.MustCompile(`"msg":"tunnel closed","route":"/echo",.*"bytes_in":3,"bytes_out":3,.*"end":"eof"\}`))
	expectAnswer(t, url+"/echo", 426, "porthole connect") // refused at Debug
	p.waitLog(regexp.MustCompile(`"level":"DEBUG","msg":"tunnel refused","route":"/echo"`))
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("serve exited %d, want 0", code)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(p.stderr.String()), "\n") {
		if !strings.HasPrefix(line, `{"time":`) {
			t.Errorf("a line of stderr is not JSON: %s", line)
		}
	}

	for _, tc := range []struct{ args, want []string }{
		{[]string{"-log-format", "xml"}, []string{`-log-format "xml": use text or json`}},
		{[]string{"-log-level", "loud"}, []string{"-log-level", "loud"}},
		{[]string{"-admin", "127.0.0.1:x"}, []string{"-admin", "127.0.0.1:x"}},
	} {
		r := runPorthole(t, nil, append([]string{"serve", "-listen", "127.0.0.1:0"}, tc.args...)...)
		for _, w := range tc.want {
			if r.code != 1 || !strings.Contains(r.stderr, w) {
				t.Errorf("serve %s: exit %d, want 1 and %q; stderr:\n%s", tc.args, r.code, w, r.stderr)
			}
		}
	}
}

// httpClient bounds every request of these tests.
var httpClient = &http.Client{Timeout: patience}

// answer GETs url and returns the status and body.
func answer(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func expectAnswer(t *testing.T, url string, code int, want string) {
	t.Helper()
	if got, body := answer(t, url); got != code || !strings.Contains(body, want) {
		t.Errorf("GET %s: %d %q, want %d and %q", url, got, body, code, want)
	}
}

// awaitAnswer asks url until it answers code, within patience.
func awaitAnswer(t *testing.T, url string, code int) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		got, body := answer(t, url)
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s still answers %d %q after %v, want %d", url, got, body, patience, code)
		}
	}
}

// expectMetrics scrapes admin's /metrics and checks it has each line.
func expectMetrics(t *testing.T, admin string, lines ...string) {
	t.Helper()
	code, body := answer(t, admin+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %q", code, body)
	}
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l) {
			t.Errorf("/metrics lacks %q", l)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
