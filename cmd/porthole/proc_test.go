//go:build linux

// The end-to-end tests of the porthole command. TestMain builds the binary
// once; each test runs it as real processes on real loopback sockets, reads
// their logs to learn the addresses the kernel picked, and waits on events
// (a log line, a read), each wait bounded by a deadline.

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testgw"
)

// bin is the porthole binary TestMain builds, with -race when the tests
// run with -race, so the CLI's own goroutines are checked too.
var bin string

// patience bounds every wait for a process or a socket.
const patience = 20 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "porthole-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "porthole")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building porthole for the tests: %v\n", err)
		return 1
	}
	return m.Run()
}

// proc is a process a test started. Its output is kept, and a test waits
// for what it prints; when the test ends the process is killed by its PID
// if it still runs, and its stderr is shown if the test failed.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdout testgw.Buffer
	stderr testgw.Buffer
	done   chan struct{} // closed once the process has exited and its output is in
}

// startPorthole starts the porthole binary with args, stdin from stdin (nil
// for none).
func startPorthole(t testing.TB, stdin io.Reader, args ...string) *proc {
	t.Helper()
	cmd := portholeCmd(args...)
	cmd.Stdin = stdin
	return startCmd(t, cmd)
}

// portholeCmd is the command for the porthole binary with args, to be
// started with startCmd once its pipes are set.
func portholeCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	// A -race binary sleeps a second before a clean exit, waiting for late
	// reports; the tests wait for its exit, so skip that.
	cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return cmd
}

// startCmd starts cmd, whose Stdout and Stderr the proc sets unless the
// caller already has.
func startCmd(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: filepath.Base(cmd.Path), cmd: cmd, done: make(chan struct{})}
	if len(cmd.Args) > 1 {
		p.name += " " + cmd.Args[1]
	}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.stderr
	}
	// A grandchild holding our pipes open (ssh's ProxyCommand) must not
	// keep Wait from returning.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	p.name = fmt.Sprintf("%s (pid %d)", p.name, cmd.Process.Pid)
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.cleanup)
	return p
}

func (p *proc) String() string { return p.name }

func (p *proc) cleanup() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(patience):
			p.t.Errorf("%s still runs %v after SIGKILL", p, patience)
		}
	}
	if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
		p.t.Errorf("%s reported a data race", p)
	}
	if p.t.Failed() {
		p.t.Logf("%s stderr:\n%s", p, p.stderr.String())
	}
}

// signal sends sig to the process, by its PID.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signalling %s: %v", p, err)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to end and returns its exit code (-1 when a
// signal ended it).
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(patience):
		p.t.Fatalf("%s did not exit within %v; stderr:\n%s", p, patience, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitLog waits for a line of stderr that re matches and returns the
// submatches. It fails the test if the process ends first or the deadline
// passes.
func (p *proc) waitLog(re *regexp.Regexp) []string {
	p.t.Helper()
	var m []string
	p.waitFor(&p.stderr, "stderr matching "+re.String(), func(s string) bool {
		m = re.FindStringSubmatch(s)
		return m != nil
	})
	return m
}

// waitCount waits until re matches n times in stderr.
func (p *proc) waitCount(re *regexp.Regexp, n int) {
	p.t.Helper()
	p.waitFor(&p.stderr, fmt.Sprintf("%d lines of stderr matching %s", n, re), func(s string) bool {
		return len(re.FindAllStringIndex(s, -1)) >= n
	})
}

// waitOutput waits for stdout to be exactly want.
func (p *proc) waitOutput(want string) {
	p.t.Helper()
	p.waitFor(&p.stdout, fmt.Sprintf("stdout %q", want), func(s string) bool { return s == want })
}

func (p *proc) waitFor(s *testgw.Buffer, what string, match func(string) bool) {
	p.t.Helper()
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	for {
		text, changed := s.Snapshot()
		if match(text) {
			return
		}
		select {
		case <-changed:
		case <-p.done:
			if text, _ := s.Snapshot(); match(text) {
				return
			}
			p.t.Fatalf("%s exited (code %d) before printing %s; stdout:\n%s\nstderr:\n%s",
				p, p.cmd.ProcessState.ExitCode(), what, p.stdout.String(), p.stderr.String())
		case <-deadline.C:
			p.t.Fatalf("%s printed no %s within %v; stdout:\n%s\nstderr:\n%s",
				p, what, patience, p.stdout.String(), p.stderr.String())
		}
	}
}

// gw is a running "porthole serve".
type gw struct {
	*proc
	url     string // http://127.0.0.1:PORT, from the log
	addr    string // 127.0.0.1:PORT
	tlsURL  string // https://127.0.0.1:PORT, with -tls-listen
	tlsAddr string
	pin     string // the self-signed certificate's SHA-256, with -tls-listen and no -cert
}

var (
	httpURLRe  = regexp.MustCompile(`msg=listening url=(http://(\S+))/`)
	httpsURLRe = regexp.MustCompile(`msg=listening url=(https://(\S+))/`)
	pinRe      = regexp.MustCompile(`sha256=([0-9a-f]{64})`)
)

// startServe starts "porthole serve args..." and waits until it listens. args
// must set -listen (to 127.0.0.1:0, say) so no test uses the default port.
func startServe(t testing.TB, args ...string) *gw {
	t.Helper()
	g := &gw{proc: startPorthole(t, nil, append([]string{"serve"}, args...)...)}
	if flagValue(args, "-listen") != "" {
		m := g.waitLog(httpURLRe)
		g.url, g.addr = m[1], m[2]
	}
	if flagValue(args, "-tls-listen") != "" {
		if flagValue(args, "-cert") == "" {
			g.pin = g.waitLog(pinRe)[1]
		}
		m := g.waitLog(httpsURLRe)
		g.tlsURL, g.tlsAddr = m[1], m[2]
	}
	return g
}

// stop sends SIGTERM and checks that serve exits 0.
func (g *gw) stop() {
	g.t.Helper()
	g.signal(syscall.SIGTERM)
	if code := g.wait(); code != 0 {
		g.t.Fatalf("%s exited %d after SIGTERM, want 0", g, code)
	}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// result is how a process that ran to its end went.
type result struct {
	code           int
	stdout, stderr string
}

// runPorthole runs porthole with args and stdin to its end.
func runPorthole(t testing.TB, stdin []byte, args ...string) result {
	t.Helper()
	return runPortholeEnv(t, nil, stdin, args...)
}

// runPortholeEnv is runPorthole with env ("NAME=value") added to the
// environment.
func runPortholeEnv(t testing.TB, env []string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := portholeCmd(args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = bytes.NewReader(stdin)
	p := startCmd(t, cmd)
	code := p.wait()
	return result{code, p.stdout.String(), p.stderr.String()}
}

// writeFile writes content at dir/name and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
