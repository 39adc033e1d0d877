package intermediary_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/porthole/porthole/internal/intermediary"
	"github.com/porthole/porthole/internal/testgw"
)

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cutLimit bounds the wait for NginxShortTimeout's 5-second cut.
const cutLimit = 15 * time.Second

// upstreamReport is what the upstream answers a request that is not an
// upgrade: what reached it.
type upstreamReport struct {
	Proto, Host, Upgrade string
	BodyLen              int64
	BodySHA256           string
}

// serveUpstream answers an Upgrade request with 101 and then echoes the
// raw stream until the client's EOF; any other request with an
// upstreamReport in JSON.
func serveUpstream(w http.ResponseWriter, r *http.Request) {
	if up := r.Header.Get("Upgrade"); up != "" {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(cutLimit))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", up)
		if brw.Flush() == nil {
			io.Copy(conn, brw.Reader) // the bytes already buffered, then the connection's
		}
		return
	}
	sum := sha256.New()
	n, err := io.Copy(sum, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	json.NewEncoder(w).Encode(upstreamReport{
		Proto:      r.Proto,
		Host:       r.Host,
		Upgrade:    r.Header.Get("Upgrade"),
		BodyLen:    n,
		BodySHA256: hex.EncodeToString(sum.Sum(nil)),
	})
}

// upstream starts serveUpstream on a loopback port and returns its
// host:port.
func upstream(t *testing.T) string {
	srv, _ := testgw.HTTPServer(t, http.HandlerFunc(serveUpstream), false)
	return srv.Listener.Addr().String()
}

// dial connects to addr, with reads and writes bounded by
// testgw.WaitLimit; the connection closes when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testgw.WaitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(testgw.WaitLimit))
	return conn
}

// report sends head (a whole request) to addr and returns the upstream's
// report of it, failing unless the answer is 200.
func report(t *testing.T, addr, head string) upstreamReport {
	t.Helper()
	resp, body := testgw.Ask(t, dial(t, addr), head)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s\n%s", strings.SplitN(head, "\r\n", 2)[0], resp.Status, body)
	}
	var rep upstreamReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("%s: not the upstream's report: %v\n%s", strings.SplitN(head, "\r\n", 2)[0], err, body)
	}
	return rep
}

// upgrade asks the reverse proxy at addr for an upgrade to "foo", checks
// the 101, and that bytes go both ways after it (through the upstream's
// echo), and returns the upgraded connection.
func upgrade(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn := dial(t, addr)
	io.WriteString(conn, "GET /tunnel HTTP/1.1\r\nHost: porthole.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to the upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "foo" {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade answered %s, Upgrade %q, want 101 and foo\n%s", resp.Status, resp.Header.Get("Upgrade"), body)
	}
	echo(t, conn, br)
	return conn, br
}

// echo writes on conn and checks that the same bytes come back through br.
func echo(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	for _, msg := range []string{"ping\n", "and back, raw\x00\xff\n"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("reading the echo of %q: %v", msg, err)
		}
		if string(got) != msg {
			t.Fatalf("echo: got %q, want %q", got, msg)
		}
	}
}

// connect asks the forward proxy at proxy for a tunnel to target, with
// header (whole lines) added, and returns its answer (body read unless
// 2xx) and the connection.
func connect(t *testing.T, proxy, target, header string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn := dial(t, proxy)
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, header)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("reading the answer to CONNECT %s: %v", target, err)
	}
	if resp.StatusCode/100 != 2 {
		io.Copy(io.Discard, resp.Body)
	}
	return resp, conn, br
}

func TestNginx(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	t.Run("websocket", func(t *testing.T) {
		t.Parallel()
		upgrade(t, intermediary.Nginx(t, up, intermediary.NginxWebSocket))
	})
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		addr := intermediary.Nginx(t, up, intermediary.NginxDefault)
		rep := report(t, addr, "GET / HTTP/1.1\r\nHost: porthole.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
		if rep.Proto != "HTTP/1.0" || rep.Upgrade != "" {
			t.Errorf("the upstream got %s with Upgrade %q, want HTTP/1.0 and none", rep.Proto, rep.Upgrade)
		}
	})
	t.Run("short-timeout", func(t *testing.T) {
		t.Parallel()
		conn, br := upgrade(t, intermediary.Nginx(t, up, intermediary.NginxShortTimeout))
		idle := time.Now()
		conn.SetReadDeadline(idle.Add(cutLimit))
		_, err := br.ReadByte()
		took := time.Since(idle)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("the idle tunnel was not cut within %v", cutLimit)
		case err == nil:
			t.Fatal("a byte came out of the idle tunnel")
		case took < 4*time.Second:
			t.Fatalf("the tunnel was cut after %v (%v), before the 5s timeout", took, err)
		}
		t.Logf("cut after %v idle: %v", took.Round(time.Millisecond), err)
	})
}

func TestHAProxy(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	t.Run("upgrade", func(t *testing.T) {
		t.Parallel()
		upgrade(t, intermediary.HAProxy(t, up, intermediary.HAProxyOptions{}))
	})
	t.Run("buffer-request", func(t *testing.T) {
		t.Parallel()
		addr := intermediary.HAProxy(t, up, intermediary.HAProxyOptions{BufferRequest: true})
		body := strings.Repeat("porthole poll carrier body\n", 10000) // 270 kB: more than HAProxy's buffer
		sum := sha256.Sum256([]byte(body))
		rep := report(t, addr, fmt.Sprintf("POST /send HTTP/1.1\r\nHost: porthole.test\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		if rep.BodyLen != int64(len(body)) || rep.BodySHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("the upstream got %d bytes (SHA-256 %s), want %d (%x)", rep.BodyLen, rep.BodySHA256, len(body), sum)
		}
	})
}

func TestCaddy(t *testing.T) {
	t.Parallel()
	addr := intermediary.Caddy(t, upstream(t))
	if rep := report(t, addr, "GET / HTTP/1.1\r\nHost: porthole.test\r\n\r\n"); rep.Host != "porthole.test" {
		t.Errorf("the upstream got Host %q, want porthole.test", rep.Host)
	}
	upgrade(t, addr)
}

// forwardProxies start the forward proxies that share TestForwardProxy's
// checks, with CONNECT to any port allowed or not.
var forwardProxies = []struct {
	name  string
	start func(t *testing.T, connectAnyPort bool) string
}{
	{"squid", func(t *testing.T, anyPort bool) string {
		return intermediary.Squid(t, intermediary.SquidOptions{ConnectAnyPort: anyPort})
	}},
	{"tinyproxy", func(t *testing.T, anyPort bool) string {
		return intermediary.Tinyproxy(t, intermediary.TinyproxyOptions{ConnectAnyPort: anyPort})
	}},
}

// TestForwardProxy checks that each forward proxy passes an absolute-form
// GET, refuses CONNECT to a loopback port other than 443 by default, and
// allows it with ConnectAnyPort.
func TestForwardProxy(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	target := testgw.EchoServer(t)
	for _, fp := range forwardProxies {
		t.Run(fp.name, func(t *testing.T) {
			t.Parallel()
			t.Run("default", func(t *testing.T) {
				t.Parallel()
				addr := fp.start(t, false)
				if rep := report(t, addr, fmt.Sprintf("GET http://%s/get HTTP/1.1\r\nHost: %s\r\n\r\n", up, up)); rep.Host != up {
					t.Errorf("the upstream got Host %q, want %s", rep.Host, up)
				}
				if resp, _, _ := connect(t, addr, target, ""); resp.StatusCode/100 == 2 {
					t.Errorf("CONNECT %s answered %s, want a refusal", target, resp.Status)
				} else {
					t.Logf("CONNECT %s: %s", target, resp.Status)
				}
			})
			t.Run("connect-any-port", func(t *testing.T) {
				t.Parallel()
				resp, conn, br := connect(t, fp.start(t, true), target, "")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("CONNECT %s answered %s, want 200", target, resp.Status)
				}
				echo(t, conn, br)
			})
		})
	}
}

func TestSquidHosts(t *testing.T) {
	t.Parallel()
	_, port, _ := net.SplitHostPort(upstream(t))
	addr := intermediary.Squid(t, intermediary.SquidOptions{Hosts: map[string]string{"gw.porthole.test": "127.0.0.1"}})
	host := net.JoinHostPort("gw.porthole.test", port)
	if rep := report(t, addr, fmt.Sprintf("GET http://%s/get HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)); rep.Host != host {
		t.Errorf("the upstream got Host %q, want %s", rep.Host, host)
	}
}

func TestTinyproxyBasicAuth(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	addr := intermediary.Tinyproxy(t, intermediary.TinyproxyOptions{BasicAuth: "porthole:s3cret"})
	get := fmt.Sprintf("GET http://%s/get HTTP/1.1\r\nHost: %s\r\n", up, up)
	if resp, body := testgw.Ask(t, dial(t, addr), get+"\r\n"); resp.StatusCode != http.StatusProxyAuthRequired {
		t.Errorf("without credentials: %s, want 407\n%s", resp.Status, body)
	}
	auth := "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("porthole:s3cret")) + "\r\n"
	report(t, addr, get+auth+"\r\n")
}

func TestMitmproxy(t *testing.T) {
	t.Parallel()
	srv, _ := testgw.HTTPServer(t, http.HandlerFunc(serveUpstream), true)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	t.Run("https", func(t *testing.T) {
		t.Parallel()
		mitmGet(t, intermediary.MitmOptions{}, srv.URL+"/get")
	})
	t.Run("hosts", func(t *testing.T) {
		t.Parallel()
		host := net.JoinHostPort("gw.porthole.test", port)
		opts := intermediary.MitmOptions{Hosts: map[string]string{"gw.porthole.test": "127.0.0.1"}}
		if rep := mitmGet(t, opts, "https://"+host+"/get"); rep.Host != host {
			t.Errorf("the upstream got Host %q, want %s", rep.Host, host)
		}
	})
}

// mitmGet runs mitmproxy with opts and GETs target, an https URL, through
// it, trusting only mitmproxy's CA, and checks that the certificate the
// client sees was issued by that CA. It returns the upstream's report.
func mitmGet(t *testing.T, opts intermediary.MitmOptions, target string) upstreamReport {
	t.Helper()
	addr, caPEM := intermediary.Mitmproxy(t, opts)
	block, _ := pem.Decode(caPEM)
	if block == nil {
		t.Fatalf("mitmproxy's CA is not PEM:\n%s", caPEM)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	tr := &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: testgw.WaitLimit}
	resp, err := client.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v\n%s", target, resp.Status, err, body)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("the certificate for %v was not issued by mitmproxy's CA: %v", leaf.Subject, err)
	}
	var rep upstreamReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("not the upstream's report: %v\n%s", err, body)
	}
	return rep
}
