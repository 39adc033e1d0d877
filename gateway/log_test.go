package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// carriers are the carriers a tunnel can ride, for tests that run over
// each.
var carriers = []string{porthole.Raw, porthole.WebSocket, porthole.Poll}

// waitCount waits, within waitLimit, until re matches n times in the logs
// b holds.
func waitCount(t *testing.T, b *testgw.Buffer, re *regexp.Regexp, n int) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		s, changed := b.Snapshot()
		if len(re.FindAllStringIndex(s, -1)) >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %d log lines matching %s within %v; logs:\n%s", n, re, waitLimit, s)
		}
	}
}

// jsonLogger logs everything, Debug included, as JSON into b.
func jsonLogger(b *testgw.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// dialWith opens a tunnel to url with d, closed when the test ends.
func dialWith(t *testing.T, url string, d *porthole.Dialer) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	conn, err := porthole.Dial(ctx, url, d)
	if err != nil {
		t.Fatalf("dial %s over %s: %v", url, d.Carrier, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(waitLimit))
	return conn
}

// teeDialer dials TCP and copies all that the gateway answers into seen.
func teeDialer(seen io.Writer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &teeConn{Conn: c, seen: seen}, nil
	}
}

type teeConn struct {
	net.Conn
	seen io.Writer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.seen.Write(p[:n])
	return n, err
}

// TestLogsHoldNoSecrets runs tunnels with a bearer token over every
// carrier, a refused wrong token, and a token in a WebSocket subprotocol,
// at Debug in JSON, and checks that no token, token digest or poll
// session id appears in any log line.
func TestLogsHoldNoSecrets(t *testing.T) {
	const token, wrong = "s3cret", "wr0ngs3cret"
	logs := &testgw.Buffer{}
	gw := testgw.Start(t, gateway.Options{
		Routes: []gateway.Route{{
			Path:    "/secret",
			Service: service.Echo{},
			Auth:    &gateway.Auth{Tokens: [][32]byte{gateway.HashToken(token)}},
		}},
		Logger: jsonLogger(logs),
	})
	answers := &testgw.Buffer{} // every byte the gateway sent the poll client
	closedRe := regexp.MustCompile(`"msg":"tunnel closed"`)
	for i, c := range carriers {
		d := &porthole.Dialer{Token: token, Carrier: c}
		if c == porthole.Poll {
			d.DialContext = teeDialer(answers)
		}
		conn := dialWith(t, gw.URL+"/secret", d)
		echo(t, conn, "hello over "+c)
		conn.Close()
		waitCount(t, logs, closedRe, i+1)
	}
	ws := testgw.OpenWS(t, gw, false, "/secret", testgw.With("Sec-WebSocket-Protocol: binary, porthole.token."+token))
	ws.Conn.Close()
	waitCount(t, logs, closedRe, len(carriers)+1)

	refusedRe := regexp.MustCompile(`"msg":"tunnel refused"`)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	for _, c := range carriers {
		if conn, err := porthole.Dial(ctx, gw.URL+"/secret", &porthole.Dialer{Token: wrong, Carrier: c}); err == nil {
			conn.Close()
			t.Fatalf("a wrong token opened a tunnel over %s", c)
		}
	}
	waitCount(t, logs, refusedRe, len(carriers))
	if err := gw.Stop(t, waitLimit); err != nil {
		t.Fatal(err)
	}

	sessions := regexp.MustCompile(`(?i)`+poll.SessionHeader+`: *(\S+)`).FindAllStringSubmatch(answers.String(), -1)
	if len(sessions) != 1 {
		t.Fatalf("found %d poll session ids in the gateway's answers, want 1:\n%s", len(sessions), answers.String())
	}
	sum := gateway.HashToken(token)
	secrets := map[string]string{
		"the token":                   token,
		"the wrong token":             wrong,
		"the token's digest in hex":   hex.EncodeToString(sum[:]),
		"the token's digest, base64":  base64.StdEncoding.EncodeToString(sum[:]),
		"the token's digest, as JSON": jsonArray(sum[:]),
	}
	for i, m := range sessions {
		secrets[fmt.Sprintf("poll session id %d", i+1)] = m[1]
	}
	text := logs.String()
	for what, s := range secrets {
		if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
			t.Errorf("the logs hold %s (%s):\n%s", what, s, text)
		}
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for _, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
	t.Logf("%d log lines checked", len(lines))
}

// jsonArray is how encoding/json writes a byte array: [1,2,3].
func jsonArray(b []byte) string {
	s := make([]string, len(b))
	for i, c := range b {
		s[i] = fmt.Sprint(c)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// TestTunnelEndLog checks the tunnel's log line says why it ended: eof
// when both sides finished, error (with err) when the service reset its
// connection, shutdown when Shutdown closed it at its deadline.
func TestTunnelEndLog(t *testing.T) {
	resetter := testgw.TCPServer(t, func(c net.Conn) {
		c.Read(make([]byte, 1)) // the client's first byte, then a reset
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	logs := &testgw.Buffer{}
	gw := testgw.Start(t, gateway.Options{
		Routes: []gateway.Route{
			{Path: "/echo", Service: service.Echo{}},
			{Path: "/reset", Service: &service.TCP{Addr: resetter}},
		},
		Logger: jsonLogger(logs),
	})
	var ends []map[string]any
	lastEnd := func(n int) map[string]any {
		t.Helper()
		waitCount(t, logs, regexp.MustCompile(`"msg":"tunnel closed"`), n)
		ends = ends[:0]
		for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if rec["msg"] == "tunnel closed" {
				ends = append(ends, rec)
			}
		}
		return ends[n-1]
	}

	for i, c := range carriers {
		conn := dialWith(t, gw.URL+"/echo", &porthole.Dialer{Carrier: c})
		echo(t, conn, "ping")
		conn.Close()
		if rec := lastEnd(i + 1); rec["end"] != "eof" || rec["err"] != nil || rec["carrier"] != c {
			t.Errorf("a tunnel over %s that the client closed logged %v, want end=eof and no err", c, rec)
		}
	}

	conn := dialWith(t, gw.URL+"/reset", &porthole.Dialer{Carrier: porthole.Raw})
	write(t, conn, "x")
	if rec := lastEnd(len(carriers) + 1); rec["end"] != "error" || rec["err"] == nil {
		t.Errorf("a tunnel whose service reset logged %v, want end=error with err", rec)
	}

	conn = dialWith(t, gw.URL+"/echo", &porthole.Dialer{Carrier: porthole.Raw})
	echo(t, conn, "ping")
	gw.Stop(t, time.Millisecond) // its deadline passes while the tunnel is open
	if rec := lastEnd(len(carriers) + 2); rec["end"] != "shutdown" {
		t.Errorf("a tunnel Shutdown closed logged %v, want end=shutdown", rec)
	}
}
