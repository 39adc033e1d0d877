// Package proc runs the processes that tests and benchmarks measure from
// outside, and reads what the kernel says about any process.
//
// A helper is the test binary started again (StartHelper, StartGateway) with
// an environment variable telling its TestMain what to be: a porthole
// gateway (GatewayMain), a TCP echo server (EchoMain) or a relay of the
// caller's own. It gets a loopback
// listener bound by the parent as file descriptor 3, so its address is
// known before it starts and connections made early wait in the backlog: no
// readiness wait. Its stdin and stdout carry a line protocol: "stats"
// answers a JSON Stats taken after a GC, "tunnels" the count of open
// tunnels alone; closing its stdin makes it shut down and exit. Its memory and CPU are its own.
//
// The readers (KiB, CPU, CountFDs, ListeningPort, Children) take what
// /proc says about a process: its memory, its CPU time, its sockets.
//
// The package is for tests; nothing in porthole's commands imports it.
package proc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// Timeout bounds every wait on a helper process: its answer to "stats", its
// exit after Stop, a socket appearing in /proc.
const Timeout = 10 * time.Second

// Helper is a helper process: this test binary started again. See the
// package doc.
type Helper struct {
	Cmd  *exec.Cmd
	URL  string // http://127.0.0.1:PORT, the listener handed over as fd 3
	Addr string // 127.0.0.1:PORT

	in   io.WriteCloser
	out  *bufio.Reader
	done chan struct{}
	mu   sync.Mutex // one stats exchange at a time
}

// Stats is what a helper process reports about itself (SelfStats).
type Stats struct {
	RSS          int64 // VmRSS after runtime.GC, bytes
	RSSScavenged int64 // VmRSS after debug.FreeOSMemory, bytes
	HeapAlloc    int64 // live heap after the GC, bytes
	StackInuse   int64 // goroutine stacks, bytes
	Goroutines   int
	FDs          int // open file descriptors
	PipeFDs      int // of which pipes (splice(2) holds a pipe per direction)
	Tunnels      int // open tunnels as the helper counts them when asked, before the GC
	// RuntimeHeld is the memory the Go runtime holds from the kernel after
	// debug.FreeOSMemory, bytes: mapped and not released. It leaves out
	// what the race detector maps for itself (its shadow memory, never
	// given back), which VmRSS counts.
	RuntimeHeld int64
}

// StartHelper starts this test binary again as a helper process. env, added
// to this process's environment, tells its TestMain what to be. wrap, when
// not empty, is a command prefix it runs under (strace, perf). Its stderr
// goes to stderr (nil: this process's). Stop ends it.
func StartHelper(wrap []string, stderr io.Writer, env ...string) (*Helper, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lf, err := ln.(*net.TCPListener).File()
	ln.Close() // lf holds the socket open
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	args := append(append([]string(nil), wrap...), exe, "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stderr = stderr
	if stderr == nil {
		cmd.Stderr = os.Stderr
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a helper process: %w", err)
	}
	h := &Helper{Cmd: cmd, in: in, out: bufio.NewReader(out), done: make(chan struct{}),
		Addr: ln.Addr().String(), URL: "http://" + ln.Addr().String()}
	go func() {
		cmd.Wait()
		close(h.done)
	}()
	return h, nil
}

// PID is the helper's process ID.
func (h *Helper) PID() int { return h.Cmd.Process.Pid }

// Done is closed once the helper has exited.
func (h *Helper) Done() <-chan struct{} { return h.done }

// Stats asks the helper for its figures, within Timeout. A GC in a busy
// helper can take seconds; Tunnels is the cheap question.
func (h *Helper) Stats() (Stats, error) { return h.ask("stats", Timeout) }

// Tunnels asks the helper for its count of open tunnels alone, which it
// answers at once, without the GC Stats takes, and waits up to wait for
// the answer. A caller that saturates its own CPUs, as a load generator
// does, may take much longer than the helper to read it: Go's scheduler
// runs a goroutine woken by the network late when others are always
// ready to run.
func (h *Helper) Tunnels(wait time.Duration) (int, error) {
	st, err := h.ask("tunnels", wait)
	return st.Tunnels, err
}

// ask sends a request line and reads the JSON Stats line answering it,
// waiting up to wait.
func (h *Helper) ask(req string, wait time.Duration) (Stats, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var st Stats
	if _, err := io.WriteString(h.in, req+"\n"); err != nil {
		return st, fmt.Errorf("helper process: %w", err)
	}
	type result struct {
		line []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := h.out.ReadBytes('\n')
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return st, fmt.Errorf("helper process: %w", r.err)
		}
		return st, json.Unmarshal(r.line, &st)
	case <-time.After(wait):
		return st, fmt.Errorf("helper process: no answer to %s read within %v", req, wait)
	}
}

// Stop closes the helper's stdin, which makes it shut down and exit, and
// kills it (by its PID) if it has not within Timeout.
func (h *Helper) Stop() {
	h.in.Close()
	select {
	case <-h.done:
	case <-time.After(Timeout):
		h.Cmd.Process.Kill()
		<-h.done
	}
}

// Listener is, in a helper process, the listener its parent handed over.
func Listener() (net.Listener, error) {
	lf := os.NewFile(3, "listener")
	ln, err := net.FileListener(lf)
	lf.Close()
	return ln, err
}

// AnswerStats is a helper process's side of the stats exchange: it answers
// each "stats" line on stdin with SelfStats, Tunnels set from open (read
// first, as the line arrives: a GC in a busy process can take a while), and
// each "tunnels" line with Tunnels alone, as a JSON line on stdout. With
// memProfile set, each "stats" writes a heap profile there first. It returns
// when stdin closes.
func AnswerStats(open func() int, memProfile string) error {
	sc := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		var st Stats
		switch sc.Text() {
		case "tunnels":
			st.Tunnels = open()
			if err := enc.Encode(st); err != nil {
				return err
			}
			continue
		case "stats":
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		tunnels := open()
		st = SelfStats()
		st.Tunnels = tunnels
		if memProfile != "" {
			if err := writeHeapProfile(memProfile); err != nil {
				return err
			}
		}
		if err := enc.Encode(st); err != nil {
			return err
		}
	}
	return sc.Err()
}

// SelfStats takes this process's figures: a GC, then its RSS, heap, stacks,
// goroutines and descriptors, then its RSS again once freed memory is
// returned to the kernel.
func SelfStats() Stats {
	var st Stats
	runtime.GC()
	rss, _ := KiB("/proc/self/status", "VmRSS")
	st.RSS = rss << 10
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.HeapAlloc = int64(ms.HeapAlloc)
	st.StackInuse = int64(ms.StackInuse)
	st.Goroutines = runtime.NumGoroutine()
	st.FDs, st.PipeFDs = CountFDs("/proc/self/fd")
	debug.FreeOSMemory()
	rss, _ = KiB("/proc/self/status", "VmRSS")
	st.RSSScavenged = rss << 10
	held := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(held)
	st.RuntimeHeld = int64(held[0].Value.Uint64() - held[1].Value.Uint64())
	return st
}

func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
