//go:build linux

package main

// Faults, with the real binary over every carrier: a backend killed
// mid-stream, a gateway restarted under a running connect -listen
// -reconnect, a gateway shut down with SIGTERM while tunnels are open.

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testgw"
)

// carrierNames are the values of connect -carrier each fault is tried with.
var carrierNames = []string{"raw", "websocket", "poll"}

// forCarriers runs test as a parallel subtest for each carrier.
func forCarriers(t *testing.T, test func(t *testing.T, carrier string)) {
	for _, c := range carrierNames {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			test(t, c)
		})
	}
}

// killNotice bounds the time from a backend's SIGKILL to the client seeing
// its tunnel end.
const killNotice = time.Second

var socatListeningRe = regexp.MustCompile(`listening on AF=2 (127\.0\.0\.1:\d+)`)

// A TCP backend (socat relaying to an echo server) is killed with SIGKILL
// while a tunnel streams through it: porthole connect, the client, sees the
// end of its tunnel (EOF or an error) within killNotice, and exits.
func TestBackendKilled(t *testing.T) {
	t.Parallel()
	socat, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat not found (apt-get install socat)")
	}
	forCarriers(t, func(t *testing.T, carrier string) {
		// socat without fork: the process that accepts the one connection
		// relays it, so its PID is the one to kill. -d -d logs the port.
		relay := startCmd(t, exec.Command(socat, "-d", "-d", "TCP4-LISTEN:0,bind=127.0.0.1", "TCP4:"+testgw.EchoServer(t)))
		backend := relay.waitLog(socatListeningRe)[1]
		g := startServe(t, "-listen", "127.0.0.1:0", "-route", "/svc=tcp://"+backend)

		// connect's stdout is a pipe read here, to time its end.
		out, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		in, c := startStdioTo(t, outW, "-carrier", carrier, g.url+"/svc")
		defer in.Close()
		outW.Close()

		// Stream: the writer sends until connect is gone; the reader
		// counts the echo and tells when a MiB has come back, then when
		// the stream ends.
		chunk := randomBytes(t, 16<<10)
		go func() {
			for {
				if _, err := in.Write(chunk); err != nil {
					return
				}
			}
		}()
		const streaming = 1 << 20
		flowing := make(chan struct{})
		type end struct {
			at  time.Time
			n   int64
			err error
		}
		ended := make(chan end, 1)
		go func() {
			buf := make([]byte, 64<<10)
			var n int64
			for {
				m, err := out.Read(buf)
				if n < streaming && n+int64(m) >= streaming {
					close(flowing)
				}
				n += int64(m)
				if err != nil {
					ended <- end{time.Now(), n, err}
					return
				}
			}
		}()
		select {
		case <-flowing:
		case e := <-ended:
			t.Fatalf("the stream ended (%v) after %d bytes, before %d came back; connect stderr:\n%s", e.err, e.n, streaming, c.stderr.String())
		case <-time.After(patience):
			t.Fatalf("%d bytes did not come back through the tunnel within %v", streaming, patience)
		}

		killed := time.Now()
		relay.signal(syscall.SIGKILL)
		var e end
		select {
		case e = <-ended:
		case <-time.After(patience):
			t.Fatalf("connect's output did not end within %v of the backend's SIGKILL", patience)
		}
		code := c.wait()
		exited := time.Since(killed)
		seen := e.at.Sub(killed)
		t.Logf("-carrier %s: backend killed after %d bytes echoed; the client's output ended %v later, connect exited %d after %v",
			carrier, e.n, seen.Round(time.Millisecond), code, exited.Round(time.Millisecond))
		if e.err != io.EOF {
			t.Errorf("reading connect's output: %v, want EOF", e.err)
		}
		if seen > killNotice {
			t.Errorf("the client saw its tunnel end %v after the backend's SIGKILL, want under %v", seen, killNotice)
		}
		if code != 0 && code != 1 {
			t.Errorf("connect exited %d, want 0 (EOF) or 1 (an error)", code)
		}
		if code == 1 && !strings.Contains(c.stderr.String(), "broke") {
			t.Errorf("connect exited 1 without saying the tunnel broke:\n%s", c.stderr.String())
		}
		// The gateway logs the tunnel's end too.
		g.waitLog(regexp.MustCompile(`msg="tunnel closed" route=/svc carrier=` + carrier))
	})
}

// The gateway behind connect -listen -reconnect is stopped with SIGTERM and
// started again on the same address: the local connection whose tunnel was
// open ends cleanly when the gateway closes it at its shutdown deadline,
// connect keeps running, a local connection made while the gateway is away
// waits (connect retries) and gets its tunnel once it is back, and a new
// one echoes again.
func TestGatewayRestart(t *testing.T) {
	t.Parallel()
	// A loopback address of its own per carrier, as in TestConnectReconnect:
	// the port freed by the first gateway is all but sure to be free when
	// the second binds it.
	hosts := map[string]string{"raw": "127.0.0.87", "websocket": "127.0.0.88", "poll": "127.0.0.89"}
	forCarriers(t, func(t *testing.T, carrier string) {
		const deadline = time.Second
		first := startServe(t, "-listen", hosts[carrier]+":0", "-shutdown-timeout", deadline.String())
		c := startPorthole(t, nil, "connect", "-listen", "127.0.0.1:0", "-reconnect", "-carrier", carrier, first.url+"/echo")
		local := c.waitLog(forwardingRe)[1]

		open := dial(t, local)
		roundTrip(t, open, "before the restart\n")

		stopped := time.Now()
		first.signal(syscall.SIGTERM)
		if code := first.wait(); code != 0 {
			t.Fatalf("serve exited %d after SIGTERM, want 0", code)
		}
		took := time.Since(stopped)
		if took > deadline+time.Second {
			t.Errorf("serve exited %v after SIGTERM with -shutdown-timeout %v", took, deadline)
		}
		// The tunnel still open at the deadline is closed: the local
		// connection reads its end, and once it is closed too (connect
		// keeps the other direction open until then: a half-close), connect
		// logs the tunnel's end.
		if n, err := open.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !testgw.IsReset(err)) {
			t.Fatalf("the local connection whose tunnel the gateway closed read %d bytes, %v; want EOF or a reset", n, err)
		}
		open.Close()
		c.waitCount(tunnelClosedRe, 1)

		waited := dial(t, local)
		if _, err := io.WriteString(waited, "waited\n"); err != nil {
			t.Fatal(err)
		}
		c.waitCount(retryingRe, 1)
		if c.exited() {
			t.Fatalf("connect -reconnect exited while the gateway was away:\n%s", c.stderr.String())
		}

		second := startPorthole(t, nil, "serve", "-listen", first.addr)
		if m := second.waitLog(regexp.MustCompile(`msg=listening|address already in use`)); m[0] != "msg=listening" {
			t.Skipf("another process took %s between the gateway's stop and its restart (a race outside this test):\n%s", first.addr, second.stderr.String())
		}
		back := time.Now()
		readExactly(t, waited, "waited\n")
		t.Logf("-carrier %s: serve exited %v after SIGTERM; the waiting connection got its tunnel %v after the gateway was back",
			carrier, took.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
		if err := echoes(dial(t, local), []byte("after the restart")); err != nil {
			t.Fatal(err)
		}
	})
}

// SIGTERM on serve with a tunnel open over each carrier (for poll, a
// session that needs new requests while the gateway drains): the tunnel
// works on until its client ends it, then serve exits 0 at once, well
// within its deadline.
func TestServeShutdownDrainsEachCarrier(t *testing.T) {
	t.Parallel()
	forCarriers(t, func(t *testing.T, carrier string) {
		g := startServe(t, "-listen", "127.0.0.1:0", "-shutdown-timeout", "10s")
		in, c := startStdio(t, "-carrier", carrier, g.url+"/echo")
		io.WriteString(in, "before\n")
		c.waitOutput("before\n")

		g.signal(syscall.SIGTERM)
		g.waitLog(regexp.MustCompile(`shutting down`))
		// More than one exchange, so a poll session makes new requests
		// (and may need new connections) while the gateway drains.
		want := "before\n"
		for i := range 3 {
			line := fmt.Sprintf("during %d\n", i)
			io.WriteString(in, line)
			want += line
			c.waitOutput(want)
		}
		if g.exited() {
			t.Fatalf("serve exited with a tunnel open:\n%s", g.stderr.String())
		}

		in.Close()
		ended := time.Now()
		if code := c.wait(); code != 0 {
			t.Errorf("connect exited %d after its stdin ended, want 0", code)
		}
		if code := g.wait(); code != 0 {
			t.Errorf("serve exited %d, want 0", code)
		}
		took := time.Since(ended)
		t.Logf("-carrier %s: serve exited %v after the client ended its tunnel", carrier, took.Round(time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("serve exited %v after its last tunnel ended, with 10s of its deadline left; want at once", took)
		}
		if strings.Contains(g.stderr.String(), "deadline passed") {
			t.Errorf("serve closed the tunnel instead of draining it:\n%s", g.stderr.String())
		}
		g.waitLog(regexp.MustCompile(`msg=stopped`))
	})
}

// SIGTERM on serve with -shutdown-timeout and a tunnel open over each
// carrier that its client does not end: serve closes it at the deadline and
// exits soon after, and the client sees its tunnel end.
func TestServeShutdownDeadlineEachCarrier(t *testing.T) {
	t.Parallel()
	forCarriers(t, func(t *testing.T, carrier string) {
		const deadline = 500 * time.Millisecond
		g := startServe(t, "-listen", "127.0.0.1:0", "-shutdown-timeout", deadline.String())
		in, c := startStdio(t, "-carrier", carrier, g.url+"/echo")
		defer in.Close()
		io.WriteString(in, "open\n")
		c.waitOutput("open\n")

		start := time.Now()
		g.signal(syscall.SIGTERM)
		code := g.wait()
		took := time.Since(start)
		t.Logf("-carrier %s: serve exited %v after SIGTERM", carrier, took.Round(time.Millisecond))
		if code != 0 {
			t.Errorf("serve exited %d, want 0", code)
		}
		if took < deadline-100*time.Millisecond || took > deadline+1500*time.Millisecond {
			t.Errorf("serve exited %v after SIGTERM with -shutdown-timeout %v; want about %v", took, deadline, deadline)
		}
		g.waitLog(regexp.MustCompile(`shutdown deadline passed`))
		// The client sees its tunnel end, and exits.
		if code := c.wait(); code != 0 && code != 1 {
			t.Errorf("connect exited %d after the gateway closed its tunnel, want 0 or 1", code)
		}
	})
}

// startStdio starts porthole connect in stdio mode with args, its stdin a
// pipe the test writes to.
func startStdio(t *testing.T, args ...string) (io.WriteCloser, *proc) {
	t.Helper()
	return startStdioTo(t, nil, args...)
}

// startStdioTo is startStdio with connect's stdout going to stdout (nil:
// kept by the proc).
func startStdioTo(t *testing.T, stdout *os.File, args ...string) (io.WriteCloser, *proc) {
	t.Helper()
	cmd := portholeCmd(append([]string{"connect"}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	return in, startCmd(t, cmd)
}

// roundTrip writes msg on conn and reads it back.
func roundTrip(t *testing.T, conn net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	readExactly(t, conn, msg)
}

// readExactly reads len(want) bytes from conn and checks they are want.
func readExactly(t *testing.T, conn net.Conn, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}
