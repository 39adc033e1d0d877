//go:build linux

package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testgw"
)

// printf abc | porthole connect http://127.0.0.1:PORT/echo
func TestConnectStdioEcho(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0")
	r := runPorthole(t, []byte("abc"), "connect", g.url+"/echo")
	if r.code != 0 || r.stdout != "abc" {
		t.Fatalf("connect: exit %d, stdout %q, want 0 and %q; stderr:\n%s", r.code, r.stdout, "abc", r.stderr)
	}
}

func TestConnectTLS(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0", "-tls-listen", "127.0.0.1:0")
	echo := g.tlsURL + "/echo"

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"fingerprint", []string{"-fingerprint", g.pin}},
		// The form openssl x509 -fingerprint -sha256 prints.
		{"fingerprint-openssl-form", []string{"-fingerprint", opensslForm(g.pin)}},
		{"insecure", []string{"-insecure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"connect"}, tc.args...), echo)
			r := runPorthole(t, []byte("over tls"), args...)
			if r.code != 0 || r.stdout != "over tls" {
				t.Fatalf("connect %s: exit %d, stdout %q; stderr:\n%s", tc.args, r.code, r.stdout, r.stderr)
			}
		})
	}

	t.Run("untrusted", func(t *testing.T) {
		r := runPorthole(t, []byte("x"), "connect", echo)
		if r.code == 0 || r.stdout != "" {
			t.Fatalf("connect to a self-signed gateway without trust: exit %d, stdout %q; want a failure", r.code, r.stdout)
		}
		for _, want := range []string{"-ca", "-fingerprint"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say to use %s:\n%s", want, r.stderr)
			}
		}
	})

	t.Run("wrong-fingerprint", func(t *testing.T) {
		wrong := strings.Repeat("ab", 32)
		r := runPorthole(t, []byte("x"), "connect", "-fingerprint", wrong, echo)
		if r.code == 0 || !strings.Contains(r.stderr, "fingerprint") {
			t.Fatalf("connect with a wrong pin: exit %d; stderr:\n%s", r.code, r.stderr)
		}
	})
}

// The certificate a gateway gets from a CA of its own, trusted by the
// client with -ca.
func TestConnectTLSWithCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCA(t, dir)
	g := startServe(t, "-listen", "127.0.0.1:0", "-tls-listen", "127.0.0.1:0", "-cert", certFile, "-key", keyFile)
	if pinRe.MatchString(g.stderr.String()) {
		t.Errorf("serve with -cert logged a self-signed fingerprint:\n%s", g.stderr.String())
	}
	r := runPorthole(t, []byte("signed"), "connect", "-ca", caFile, g.tlsURL+"/echo")
	if r.code != 0 || r.stdout != "signed" {
		t.Fatalf("connect -ca: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// The system roots do not know this CA.
	r = runPorthole(t, []byte("x"), "connect", g.tlsURL+"/echo")
	if r.code == 0 || !strings.Contains(r.stderr, "-ca") {
		t.Fatalf("connect without -ca: exit %d; stderr:\n%s", r.code, r.stderr)
	}
}

// -route replaces the default routes: the tcp backend answers, /echo is
// gone.
func TestRouteTCP(t *testing.T) {
	t.Parallel()
	backend := testgw.EchoServer(t)
	g := startServe(t, "-listen", "127.0.0.1:0", "-route", "/svc=tcp://"+backend)

	data := randomBytes(t, 1<<20)
	r := runPorthole(t, data, "connect", g.url+"/svc")
	if r.code != 0 || !bytes.Equal([]byte(r.stdout), data) {
		t.Fatalf("connect /svc: exit %d, %d bytes back of %d sent (equal: %v); stderr:\n%s",
			r.code, len(r.stdout), len(data), bytes.Equal([]byte(r.stdout), data), r.stderr)
	}
	g.waitLog(regexp.MustCompile(`msg="tunnel closed" route=/svc .*bytes_in=1048576 bytes_out=1048576`))

	r = runPorthole(t, []byte("x"), "connect", g.url+"/echo")
	if r.code != 1 || !strings.Contains(r.stderr, "404") || r.stdout != "" {
		t.Fatalf("connect /echo with only -route /svc: exit %d, stdout %q, want 1 and a 404; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestDeadBackend(t *testing.T) {
	t.Parallel()
	dead := testgw.DeadAddr(t)
	g := startServe(t, "-listen", "127.0.0.1:0", "-route", "/dead=tcp://"+dead)
	r := runPorthole(t, []byte("x"), "connect", g.url+"/dead")
	if r.code != 1 {
		t.Errorf("connect to a dead backend: exit %d, want 1", r.code)
	}
	for _, want := range []string{"502", dead, "connection refused"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

var (
	forwardingRe   = regexp.MustCompile(`msg=forwarding listen=(\S+)`)
	tunnelClosedRe = regexp.MustCompile(`msg="tunnel closed"`)
	retryingRe     = regexp.MustCompile(`retrying`)
)

// connect -listen opens one tunnel per local connection.
func TestConnectListen(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0")
	c := startPorthole(t, nil, "connect", "-listen", "127.0.0.1:0", g.url+"/echo")
	local := c.waitLog(forwardingRe)[1]

	const n = 3
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, local)
	}
	errc := make(chan error, n)
	for i, conn := range conns {
		data := append([]byte(fmt.Sprintf("connection %d:", i)), randomBytes(t, 256<<10)...)
		go func() { errc <- echoes(conn, data) }()
	}
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	c.waitCount(tunnelClosedRe, n)
	g.waitCount(tunnelClosedRe, n)
}

// connect -reconnect retries while the gateway is away, and the local
// connection that waited gets its tunnel once the gateway is back.
func TestConnectReconnect(t *testing.T) {
	t.Parallel()
	// A loopback address of its own: other tests and processes bind
	// 127.0.0.1, so the port freed below is all but sure to be free when
	// serve binds it again.
	first := startServe(t, "-listen", "127.0.0.86:0")
	addr, url := first.addr, first.url
	first.stop()

	r := runPorthole(t, []byte("x"), "connect", url+"/echo")
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("connect without -reconnect to a stopped gateway: exit %d, want 1 and connection refused; stderr:\n%s", r.code, r.stderr)
	}

	c := startPorthole(t, nil, "connect", "-listen", "127.0.0.1:0", "-reconnect", url+"/echo")
	local := c.waitLog(forwardingRe)[1]
	conn := dial(t, local)
	if _, err := conn.Write([]byte("waited\n")); err != nil {
		t.Fatal(err)
	}
	c.waitCount(retryingRe, 2)

	second := startPorthole(t, nil, "serve", "-listen", addr)
	if m := second.waitLog(regexp.MustCompile(`msg=listening|address already in use`)); m[0] != "msg=listening" {
		t.Skipf("another process took %s between the gateway's stop and its restart (a race outside this test):\n%s", addr, second.stderr.String())
	}

	got := make([]byte, len("waited\n"))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "waited\n" {
		t.Fatalf("read %q, %v from the tunnel that waited for the gateway; want %q", got, err, "waited\n")
	}
	if err := echoes(dial(t, local), []byte("after the gateway came back")); err != nil {
		t.Fatal(err)
	}
}

func TestServeBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"serve", "-listen", "127.0.0.1:0", "-route", "nope"}, 1, []string{"PATH=TARGET", "/ssh=tcp://127.0.0.1:22"}},
		{[]string{"serve", "-listen", "127.0.0.1:0", "-route", "/x=udp://a:1"}, 1, []string{"udp://a:1", "echo, chat or tcp://host:port"}},
		{[]string{"serve", "-listen", "127.0.0.1:0", "-route", "/x=tcp://nohost"}, 1, []string{"tcp://127.0.0.1:22"}},
		{[]string{"serve", "-listen", "127.0.0.1:0", "extra"}, 1, []string{"-route PATH=TARGET"}},
		{[]string{"serve", "-listen", "127.0.0.1:0", "-cert", "a.pem"}, 1, []string{"-cert and -key"}},
		{[]string{"connect"}, 1, []string{"one URL", "http://127.0.0.1:8080/echo"}},
		{[]string{"connect", "ftp://127.0.0.1/echo"}, 1, []string{"http://, https://, ws:// or wss://"}},
		{[]string{"connect", "-carrier", "pigeon", "http://127.0.0.1/echo"}, 1, []string{`"auto", "raw", "websocket" or "poll"`}},
		{[]string{"connect", "-proxy", "socks5://127.0.0.1:1080", "http://127.0.0.1/echo"}, 1, []string{"only http:// and https:// proxies"}},
		{[]string{"serve", "-long-poll", "0s"}, 1, []string{"-long-poll and -session-idle must be positive"}},
		{[]string{"bogus"}, 1, []string{`unknown command "bogus"`, "porthole serve", "porthole connect"}},
		{nil, 2, []string{"Usage:", "porthole serve", "porthole connect"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runPorthole(t, nil, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "msg=listening") {
				t.Errorf("serve listened despite bad flags:\n%s", r.stderr)
			}
		})
	}
}

// The bare form typed by hand, as with telnet or openssl s_client.
func TestBareForm(t *testing.T) {
	t.Parallel()
	g := startServe(t, "-listen", "127.0.0.1:0", "-tls-listen", "127.0.0.1:0")
	check := func(t *testing.T, conn net.Conn) {
		for _, s := range []string{"GET /echo HTTP/1.0\r\n\r\n", "hello, typed by hand\r\n"} {
			if _, err := io.WriteString(conn, s); err != nil {
				t.Fatal(err)
			}
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || line != "hello, typed by hand\r\n" {
			t.Fatalf("read %q, %v; want the line echoed and nothing before it", line, err)
		}
	}
	t.Run("tcp", func(t *testing.T) { check(t, dial(t, g.addr)) })
	t.Run("tls", func(t *testing.T) {
		conn := tls.Client(dial(t, g.tlsAddr), &tls.Config{
			InsecureSkipVerify: true, // verified just below, against the logged pin
			VerifyConnection: func(cs tls.ConnectionState) error {
				if sum := sha256.Sum256(cs.PeerCertificates[0].Raw); hex.EncodeToString(sum[:]) != g.pin {
					return fmt.Errorf("certificate sha256 %x, serve logged %s", sum, g.pin)
				}
				return nil
			},
		})
		if err := conn.Handshake(); err != nil {
			t.Fatal(err)
		}
		check(t, conn)
	})
}

// Each refusal a gateway gives, asked with raw requests.
func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	dead := testgw.DeadAddr(t)
	g := startServe(t, "-listen", "127.0.0.1:0", "-max-tunnels", "1",
		"-route", "/echo=echo", "-route", "/dead=tcp://"+dead, "-route", "/svc=tcp://"+testgw.EchoServer(t))
	const up = "Connection: Upgrade\r\nUpgrade: porthole\r\nPorthole-Version: 1\r\n"
	for _, tc := range []struct {
		name, req string
		code      int
		want      string
	}{
		{"unknown path", "GET /nope HTTP/1.1\r\nHost: x\r\n" + up + "\r\n", 404, "no route /nope"},
		{"wrong method", "PATCH /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "method PATCH"},
		{"POST without a carrier", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400, "Porthole-Carrier: poll"},
		{"upgrade without Connection", "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: porthole\r\n\r\n", 400, "Connection: Upgrade"},
		{"other upgrade", "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 400, "unsupported Upgrade"},
		{"plain GET", "GET /svc HTTP/1.1\r\nHost: x\r\n\r\n", 426, "porthole connect"},
		{"upgrade stripped", "GET /echo HTTP/1.0\r\nPorthole-Version: 1\r\n\r\n", 426, "Upgrade header did not arrive"},
		{"dead backend", "GET /dead HTTP/1.1\r\nHost: x\r\n" + up + "\r\n", 502, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ask(t, g.addr, tc.req)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%d %q, want %d and %q", resp.StatusCode, body, tc.code, tc.want)
			}
			if strings.Count(strings.TrimSpace(body), "\n") != 0 {
				t.Errorf("body is not one line: %q", body)
			}
		})
	}

	t.Run("101 then the cap", func(t *testing.T) {
		conn := dial(t, g.addr)
		io.WriteString(conn, "GET /svc HTTP/1.1\r\nHost: x\r\n"+up+"\r\nsame packet")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v, %v; want 101", resp, err)
		}
		got := make([]byte, len("same packet"))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "same packet" {
			t.Fatalf("read %q, %v through the tunnel", got, err)
		}
		// -max-tunnels 1, and that one is open.
		resp, body := ask(t, g.addr, "GET /echo HTTP/1.1\r\nHost: x\r\n"+up+"\r\n")
		if resp.StatusCode != 503 || !strings.Contains(body, "cap of 1") {
			t.Errorf("%d %q over the cap, want 503", resp.StatusCode, body)
		}
	})
}

// dial connects to addr on loopback; the connection has a deadline and is
// closed when the test ends.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(patience))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// echoes sends data on conn, half-closes, and checks that the same bytes
// come back before EOF. It closes conn.
func echoes(conn net.Conn, data []byte) error {
	defer conn.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		if err == nil {
			err = conn.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(conn)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("writing to %s: %w", conn.RemoteAddr(), werr)
	}
	if err != nil {
		return fmt.Errorf("reading from %s: %w", conn.RemoteAddr(), err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("%s echoed %d bytes that differ from the %d sent (prefix %.20q)", conn.RemoteAddr(), len(got), len(data), got)
	}
	return nil
}

// ask sends a raw request and reads the answer.
func ask(t testing.TB, addr, req string) (*http.Response, string) {
	t.Helper()
	return testgw.Ask(t, dial(t, addr), req)
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// opensslForm writes a hex fingerprint as openssl does: AB:CD:...
func opensslForm(pin string) string {
	var parts []string
	for i := 0; i+2 <= len(pin); i += 2 {
		parts = append(parts, strings.ToUpper(pin[i:i+2]))
	}
	return strings.Join(parts, ":")
}

// writeCA makes a CA and a certificate it signs for 127.0.0.1, and writes
// the CA's certificate, the server's certificate and its key as PEM files.
func writeCA(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "porthole test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	must(err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	must(err)
	write := func(name, typ string, b []byte) string {
		path := filepath.Join(dir, name)
		must(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "PRIVATE KEY", keyDER)
}
