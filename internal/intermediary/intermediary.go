// Package intermediary starts real HTTP intermediaries for tests, from
// their Debian packages: nginx, HAProxy and Caddy as reverse proxies in
// front of a plain-HTTP upstream, Squid, Tinyproxy and mitmproxy as
// forward proxies a client reaches its target through. A test matrix runs
// porthole's carriers through each to see what survives the trip.
//
// Entry points, each returning the proxy's address "127.0.0.1:PORT":
//
//	addr := intermediary.Nginx(t, upstream, intermediary.NginxWebSocket)
//	addr := intermediary.HAProxy(t, upstream, intermediary.HAProxyOptions{})
//	addr := intermediary.Caddy(t, upstream)
//	addr := intermediary.Squid(t, intermediary.SquidOptions{ConnectAnyPort: true})
//	addr := intermediary.Tinyproxy(t, intermediary.TinyproxyOptions{})
//	addr, caPEM := intermediary.Mitmproxy(t, intermediary.MitmOptions{})
//
// Every program runs with its own configuration in t.TempDir(), listens
// on loopback only, writes its output to a file there (shown with t.Log
// when the test fails), and is stopped, by its process ID, when the test
// ends. Each launcher's doc says how its program gets its socket and how
// it is known to be ready: by an event (a line in its log, or its
// listening socket appearing in /proc), never a sleep. A missing program
// fails the test with the apt-get command that installs it: CI installs
// them all, and nothing here skips.
package intermediary

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/proc"
)

// Bounds on the waits here.
const (
	startLimit = 30 * time.Second      // from starting a program until it serves (mitmdump, a Python program, takes 1-3 s, 10 s on a loaded machine)
	stopLimit  = 10 * time.Second      // from a stop signal until the program has exited
	pollEvery  = 10 * time.Millisecond // how often a start is checked on
	portTries  = 3                     // attempts at a port for a program that must bind one itself
	maxDump    = 64 << 10              // the tail of each log shown when a test fails
)

// errExited is wrapped by await's error when the program exits before it
// is ready.
var errExited = errors.New("exited before it was ready")

// command is how to run one intermediary.
type command struct {
	prog  string              // the program's file name, looked up in PATH, then /usr/sbin and /sbin
	pkg   string              // the Debian package that installs it
	args  []string            // its arguments
	dir   string              // its working directory, where its output file goes
	env   []string            // NAME=value pairs added to the test's environment
	files []*os.File          // inherited as file descriptors 3, 4, ...
	cred  *syscall.Credential // the user it runs as; nil for the test's own
	stop  syscall.Signal      // the signal that ends it at cleanup; zero means SIGKILL
	// parentDeath is the signal the kernel sends it should the test
	// process die without its cleanups. Zero means stop.
	parentDeath syscall.Signal
	logs        []string // files it writes besides its output, shown with it when the test fails
}

// process is a running intermediary, stopped when the test ends.
type process struct {
	t         testing.TB
	name      string // "squid (pid 123)"
	cmd       *exec.Cmd
	out       string   // the file holding its stdout and stderr
	logs      []string // see command.logs
	stop      syscall.Signal
	done      chan struct{} // closed once it has exited and been waited for
	afterExit func()        // if set, run once it has exited, before the logs are shown
}

// start runs c and registers its stop with t.Cleanup. A program that is
// not installed fails the test.
func start(t testing.TB, c command) *process {
	t.Helper()
	bin := lookBinary(t, c.prog, c.pkg)
	f, err := os.CreateTemp(c.dir, c.prog+"-*.out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := c.stop
	if stop == 0 {
		stop = syscall.SIGKILL
	}
	parentDeath := c.parentDeath
	if parentDeath == 0 {
		parentDeath = stop
	}
	cmd := exec.Command(bin, c.args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.ExtraFiles = c.files
	// Credential is applied before exec, so the program starts as that
	// user and keeps its parent-death signal: one that changes its own
	// user loses it (prctl(2)).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: parentDeath, Credential: c.cred}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	p := &process{
		t:    t,
		name: fmt.Sprintf("%s (pid %d)", c.prog, cmd.Process.Pid),
		cmd:  cmd,
		out:  f.Name(),
		logs: c.logs,
		stop: stop,
		done: make(chan struct{}),
	}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.halt)
	return p
}

// lookBinary returns the path of the program prog, or fails the test with
// the command that installs pkg. Debian puts servers in /usr/sbin, which
// is not in an ordinary user's PATH.
func lookBinary(t testing.TB, prog, pkg string) string {
	t.Helper()
	if path, err := exec.LookPath(prog); err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		path := filepath.Join(dir, prog)
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return path
		}
	}
	t.Fatalf("%s not found: install %s (apt-get install -y %s)", prog, pkg, pkg)
	return ""
}

// halt stops the process with its stop signal, and SIGKILL should that
// not end it within stopLimit, waits for it, and shows its logs if the
// test failed.
func (p *process) halt() {
	p.cmd.Process.Signal(p.stop) // an error means it has exited already
	select {
	case <-p.done:
	case <-time.After(stopLimit):
		p.t.Errorf("%s did not exit within %v of %v; killing it", p.name, stopLimit, p.stop)
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(stopLimit):
			p.t.Errorf("%s still running %v after SIGKILL", p.name, stopLimit)
		}
	}
	if p.afterExit != nil {
		p.afterExit()
	}
	if p.t.Failed() {
		p.dump()
	}
}

// dump shows the tail of the program's output and logs in the test's log.
func (p *process) dump() {
	for _, name := range append([]string{p.out}, p.logs...) {
		b, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) && name != p.out {
			continue // a log it had not opened yet
		}
		if err != nil {
			p.t.Logf("%s: %v", p.name, err)
			continue
		}
		if len(b) > maxDump {
			b = b[len(b)-maxDump:]
		}
		p.t.Logf("%s: %s:\n%s", p.name, filepath.Base(name), b)
	}
}

// logged reports whether the program has written s to its output or one
// of its logs.
func (p *process) logged(s string) bool {
	for _, name := range append([]string{p.out}, p.logs...) {
		if b, err := os.ReadFile(name); err == nil && bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// await checks ready every pollEvery until it reports true. It fails if
// the program exits first (the error wraps errExited), or has not become
// ready within startLimit. what says what is awaited, for the error.
func (p *process) await(what string, ready func() bool) error {
	deadline := time.Now().Add(startLimit)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not %s within %v", p.name, what, startLimit)
		}
		select {
		case <-p.done:
			if ready() {
				return nil // it got there, then exited: the caller's next step will see that
			}
			return fmt.Errorf("%s %w (%s), not %s", p.name, errExited, p.cmd.ProcessState, what)
		case <-tick.C:
		}
	}
}

// awaitListen waits until the process listens on port (any port when
// port is 0), as await does, and returns the address, "127.0.0.1:PORT".
func (p *process) awaitListen(port int) (string, error) {
	got := 0
	if err := p.await("listening", func() bool { got = p.listenPort(port); return got != 0 }); err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(got)), nil
}

// listenPort returns the port of a TCP socket on which the process
// listens, or 0 while there is none (proc.ListenPort); want, when nonzero,
// is the only port that counts. Any error reading /proc counts as not yet.
func (p *process) listenPort(want int) int {
	port, err := proc.ListenPort(p.cmd.Process.Pid, want)
	if err != nil {
		return 0
	}
	return port
}

// serveOnSocket starts the program build describes with a socket
// listening on a loopback port the kernel picks, inherited as file
// descriptor 3, and returns the socket's address, "127.0.0.1:PORT", once
// the program has logged ready. build gets the program's directory (a new
// t.TempDir()) and the address, and writes the program's configuration;
// the command's dir and files are set here. The test's copy of the socket
// is closed once the program has started, so connections are refused
// should the program die.
func serveOnSocket(t testing.TB, ready string, build func(dir, addr string) command) string {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	c := build(dir, ln.Addr().String())
	c.dir, c.files = dir, []*os.File{f}
	p := start(t, c)
	if err := p.await("serving", func() bool { return p.logged(ready) }); err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String()
}

// onFreePort runs launch on a loopback port the kernel just had free, and
// returns the address once the program listens there. It is for programs
// that can neither inherit a listening socket nor report a port the
// kernel chose for them (squid and tinyproxy refuse port 0), so another
// socket may take the port between its check and the program's bind:
// when the program exits having logged inUse, onFreePort tries again with
// a new port, portTries times in all. launch starts the program, set to
// listen on port.
func onFreePort(t testing.TB, inUse string, launch func(port int) *process) string {
	t.Helper()
	for try := 1; ; try++ {
		port := freePort(t)
		p := launch(port)
		addr, err := p.awaitListen(port)
		if err == nil {
			return addr
		}
		if try < portTries && errors.Is(err, errExited) && p.logged(inUse) {
			t.Logf("%s: port %d was taken before it could bind it; trying another", p.name, port)
			continue
		}
		t.Fatal(err)
	}
}

// freePort returns a loopback port that was free a moment ago. See
// onFreePort, the only caller: STYLE.md's rule against listen-and-close
// gives way where the program binds the port itself.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeFile writes a configuration file, failing the test on error.
func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
