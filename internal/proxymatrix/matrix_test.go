package proxymatrix

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/intermediary"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// The load of each row.
const (
	bulkBytes = 16 << 20
	idleFor   = 10 * time.Second
	tailBytes = 1 << 10
	waitLimit = 60 * time.Second // the whole row, under -race on a busy machine
)

// pingInterval is the WebSocket keep-alive of the gateway behind the nginx
// with a 5 s idle timeout: under that timeout, as an operator sets it for
// the proxy in front. The other rows use the default (30 s): a peer silent
// for two intervals is cut, and a slow intermediary (mitmproxy on a busy
// machine) can hold a pong for seconds.
const pingInterval = 2 * time.Second

// row is one way through: the URL to dial and the Dialer's settings.
type row struct {
	name    string
	url     string
	dialer  porthole.Dialer
	carrier string // the carrier auto must choose
}

// result is a row's outcome, for the table.
type result struct {
	row
	chose string
	mbps  float64
}

var (
	resultsMu sync.Mutex
	results   []result
)

// TestMatrix runs a tunnel through each intermediary with -carrier auto:
// 16 MiB echoed and checked by SHA-256, 10 s idle, then 1 KiB more.
func TestMatrix(t *testing.T) {
	routes := []gateway.Route{{Path: "/echo", Service: service.Echo{}}}
	gw := testgw.Start(t, gateway.Options{Routes: routes})
	up := strings.TrimPrefix(gw.URL, "http://")
	pinging := testgw.Start(t, gateway.Options{Routes: routes, PingInterval: pingInterval})
	plain := func(url string) (string, porthole.Dialer) { return url, porthole.Dialer{} }
	reverse := func(addr string) (string, porthole.Dialer) { return plain("http://" + addr) }
	rows := []struct {
		name, carrier string // the carrier auto must choose
		start         func(t *testing.T) (url string, d porthole.Dialer)
	}{
		{"direct, http", porthole.Raw, func(*testing.T) (string, porthole.Dialer) { return plain(gw.URL) }},
		{"direct, https", porthole.Raw, func(*testing.T) (string, porthole.Dialer) {
			return gw.TLSURL, porthole.Dialer{Fingerprint: gw.Pin}
		}},
		{"nginx, WebSocket config", porthole.WebSocket, func(t *testing.T) (string, porthole.Dialer) {
			return reverse(intermediary.Nginx(t, up, intermediary.NginxWebSocket))
		}},
		{"nginx, default config", porthole.Poll, func(t *testing.T) (string, porthole.Dialer) {
			return reverse(intermediary.Nginx(t, up, intermediary.NginxDefault))
		}},
		{"nginx, WebSocket config, proxy_read_timeout 5s", porthole.WebSocket, func(t *testing.T) (string, porthole.Dialer) {
			return reverse(intermediary.Nginx(t, strings.TrimPrefix(pinging.URL, "http://"), intermediary.NginxShortTimeout))
		}},
		{"nginx, PUT and DELETE refused", porthole.Poll, func(t *testing.T) (string, porthole.Dialer) {
			return reverse(intermediary.Nginx(t, up, intermediary.NginxGetPost))
		}},
		{"HAProxy, http mode", porthole.WebSocket, func(t *testing.T) (string, porthole.Dialer) {
			return reverse(intermediary.HAProxy(t, up, intermediary.HAProxyOptions{}))
		}},
		{"HAProxy, http-buffer-request", porthole.WebSocket, func(t *testing.T) (string, porthole.Dialer) {
			return reverse(intermediary.HAProxy(t, up, intermediary.HAProxyOptions{BufferRequest: true}))
		}},
		{"caddy, reverse_proxy", porthole.WebSocket, func(t *testing.T) (string, porthole.Dialer) {
			return reverse(intermediary.Caddy(t, up))
		}},
		{"squid, forward proxy, http:// gateway", porthole.Poll, func(t *testing.T) (string, porthole.Dialer) {
			return gw.URL, porthole.Dialer{Proxy: proxyURL("http://" + intermediary.Squid(t, intermediary.SquidOptions{}))}
		}},
		{"squid, CONNECT, https:// gateway", porthole.WebSocket, func(t *testing.T) (string, porthole.Dialer) {
			px := proxyURL("http://" + intermediary.Squid(t, intermediary.SquidOptions{ConnectAnyPort: true}))
			return gw.TLSURL, porthole.Dialer{Fingerprint: gw.Pin, Proxy: px}
		}},
		{"tinyproxy, forward proxy, http:// gateway", porthole.Poll, func(t *testing.T) (string, porthole.Dialer) {
			return gw.URL, porthole.Dialer{Proxy: proxyURL("http://" + intermediary.Tinyproxy(t, intermediary.TinyproxyOptions{}))}
		}},
		{"tinyproxy, Basic auth, CONNECT, https:// gateway", porthole.WebSocket, func(t *testing.T) (string, porthole.Dialer) {
			px := proxyURL("http://u:p@" + intermediary.Tinyproxy(t, intermediary.TinyproxyOptions{BasicAuth: "u:p", ConnectAnyPort: true}))
			return gw.TLSURL, porthole.Dialer{Fingerprint: gw.Pin, Proxy: px}
		}},
		{"mitmproxy, TLS intercepted, its CA trusted", porthole.WebSocket, func(t *testing.T) (string, porthole.Dialer) {
			addr, ca := intermediary.Mitmproxy(t, intermediary.MitmOptions{})
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(ca)
			return gw.TLSURL, porthole.Dialer{TLSConfig: &tls.Config{RootCAs: roots}, Proxy: proxyURL("http://" + addr)}
		}},
	}
	// Each row opens its tunnel and echoes the bulk; then all idle at
	// once, and each echoes its tail. The intermediaries live until the
	// whole test ends.
	var tunnels []*tunnel
	for _, rw := range rows {
		t.Run(rw.name, func(st *testing.T) {
			url, d := rw.start(t)
			if tun := open(st, row{name: rw.name, url: url, dialer: d, carrier: rw.carrier}); tun != nil {
				tunnels = append(tunnels, tun)
			}
		})
	}
	t.Run("mitmproxy, CA not trusted", func(st *testing.T) {
		addr, _ := intermediary.Mitmproxy(t, intermediary.MitmOptions{})
		untrusted(st, gw.TLSURL, proxyURL("http://"+addr))
	})
	// Idle, as a user's ssh session is between keystrokes: what lies
	// between must not cut the tunnels, and keep-alives may flow.
	time.Sleep(idleFor)
	for _, tun := range tunnels {
		t.Run(tun.name+", after 10 s idle", func(st *testing.T) {
			defer tun.conn.Close()
			tun.conn.SetDeadline(time.Now().Add(waitLimit))
			echo(st, tun.conn, tailBytes)
			resultsMu.Lock()
			results = append(results, tun.result)
			resultsMu.Unlock()
		})
	}
	t.Log("\n" + table())
}

// tunnel is a row's open tunnel between the bulk and the tail.
type tunnel struct {
	result
	conn net.Conn
}

// open dials the row's tunnel, checks the carrier auto chose, and echoes
// the bulk through it.
func open(t *testing.T, r row) *tunnel {
	var log testgw.Buffer
	d := r.dialer
	d.Logger = slog.New(slog.NewTextHandler(&log, nil))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn, err := porthole.Dial(ctx, r.url+"/echo", &d)
	if err != nil {
		t.Fatalf("Dial: %v\nlog:\n%s", err, log.String())
	}
	conn.SetDeadline(time.Now().Add(waitLimit))
	chose := chosen(log.String())
	if chose != r.carrier {
		t.Errorf("auto chose %q, want %q; log:\n%s", chose, r.carrier, log.String())
	}
	start := time.Now()
	echo(t, conn, bulkBytes)
	mbps := float64(bulkBytes) / time.Since(start).Seconds() / 1e6
	return &tunnel{result{r, chose, mbps}, conn}
}

// untrusted dials through a TLS-intercepting proxy whose CA the client does
// not trust: the dial must fail with a certificate error, at the first
// carrier, without falling back to anything.
func untrusted(t *testing.T, gatewayURL string, px func(*url.URL) (*url.URL, error)) {
	var log testgw.Buffer
	d := porthole.Dialer{Proxy: px, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn, err := porthole.Dial(ctx, gatewayURL+"/echo", &d)
	if err == nil {
		conn.Close()
		t.Fatal("Dial through an untrusted interception succeeded")
	}
	var verify *tls.CertificateVerificationError
	if !errors.As(err, &verify) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Dial error %q is not a certificate error", err)
	}
	if log.String() != "" {
		t.Errorf("auto tried other carriers after a certificate error:\n%s", log.String())
	}
	resultsMu.Lock()
	results = append(results, result{row: row{name: "mitmproxy, CA not trusted", carrier: "none"}, chose: "none: " + err.Error()})
	resultsMu.Unlock()
}

// echo sends n random bytes while reading their echo, and checks it.
func echo(t *testing.T, conn net.Conn, n int) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		wrote <- err
	}()
	h := sha256.New()
	if _, err := io.CopyN(h, conn, int64(n)); err != nil {
		t.Fatalf("reading the echo of %d bytes: %v", n, err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("writing %d bytes: %v", n, err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("the echo of %d bytes differs from what was sent", n)
	}
}

var chosenRE = regexp.MustCompile(`msg="carrier chosen" carrier=(\w+)`)

// chosen reads the carrier auto chose from its log.
func chosen(log string) string {
	m := chosenRE.FindStringSubmatch(log)
	if m == nil {
		return ""
	}
	return m[1]
}

func proxyURL(s string) func(*url.URL) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return func(*url.URL) (*url.URL, error) { return u, nil }
}

// table renders the results as docs/proxies.md's table.
func table() string {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	slices.SortStableFunc(results, func(a, b result) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	b.WriteString("| way through | carrier chosen | 16 MiB echo, MB/s |\n| --- | --- | ---: |\n")
	for _, r := range results {
		mbps := "n/a"
		if r.mbps > 0 {
			mbps = fmt.Sprintf("%.0f", r.mbps)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.name, r.chose, mbps)
	}
	return b.String()
}
