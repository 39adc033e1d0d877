package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// Flags for looking inside the gateway process (go test ... -args -gw.log=info).
var (
	gwLog        = flag.String("gw.log", "warn", "log `level` of the gateway process (debug, info, warn, error); its logs go to stderr")
	gwCPUProfile = flag.String("gw.cpuprofile", "", "write a CPU profile of the long-lived gateway process (throughput, round trip and tunnel rate) to `file`")
	gwMemProfile = flag.String("gw.memprofile", "", "write a heap profile of the memory benchmark's gateway process, taken with its idle tunnels open, to `file`")
	gwWrap       = flag.String("gw.wrap", "", "run the long-lived gateway process under this `command` prefix, split at spaces, as in \"strace -c -f -o /tmp/gw.strace\"")
)

// Environment variables that turn the test binary into the gateway helper.
const (
	helperEnv        = "PORTHOLE_BENCH_GATEWAY" // the routes, PATH=tcp://ADDR,...
	helperLogEnv     = "PORTHOLE_BENCH_GATEWAY_LOG"
	helperCPUProfEnv = "PORTHOLE_BENCH_GATEWAY_CPUPROFILE"
	helperMemProfEnv = "PORTHOLE_BENCH_GATEWAY_MEMPROFILE"
)

// Bounds on every operation, so a stuck relay fails a benchmark instead of
// hanging it.
const (
	dialTimeout = 10 * time.Second
	opTimeout   = 60 * time.Second
	procTimeout = 10 * time.Second
)

// env is what the benchmarks share: the backends, the socat relays and the
// long-lived gateway process in front of them. It is started on first use
// and stopped by TestMain.
type env struct {
	echo, sink *backend
	socatEcho  *socatProc
	socatSink  *socatProc
	socatErr   error // why the socat rows are skipped
	gw         *gatewayProc
}

var (
	envOnce sync.Once
	theEnv  *env
	envErr  error
)

// getEnv returns the shared environment, starting it on first use.
func getEnv(b *testing.B) *env {
	b.Helper()
	envOnce.Do(func() { theEnv, envErr = startEnv() })
	if envErr != nil {
		b.Fatal(envErr)
	}
	return theEnv
}

func startEnv() (*env, error) {
	e := &env{}
	var err error
	if e.echo, err = startBackend(serveEcho); err != nil {
		return nil, err
	}
	if e.sink, err = startBackend(serveSink); err != nil {
		e.stop()
		return nil, err
	}
	if e.socatEcho, err = startSocat(e.echo.addr()); err == nil {
		e.socatSink, err = startSocat(e.sink.addr())
	}
	if err != nil {
		e.socatErr = err
	}
	e.gw, err = startGateway(e.routes(), strings.Fields(*gwWrap), *gwCPUProfile, "")
	if err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

func (e *env) routes() string {
	return "/echo=tcp://" + e.echo.addr() + ",/sink=tcp://" + e.sink.addr()
}

// stopEnv stops the shared environment if it was started.
func stopEnv() {
	if theEnv != nil {
		theEnv.stop()
	}
}

func (e *env) stop() {
	if e.gw != nil {
		e.gw.stop()
	}
	for _, s := range []*socatProc{e.socatEcho, e.socatSink} {
		if s != nil {
			s.stop()
		}
	}
	for _, be := range []*backend{e.echo, e.sink} {
		if be != nil {
			be.close()
		}
	}
}

// A path is one way from the benchmark's client to a backend service,
// "echo" or "sink".
type path struct {
	name  string
	skip  string // when set, why this path cannot run
	dial  func(ctx context.Context, svc string) (net.Conn, error)
	relay int // PID of the relay process for the echo service; 0 for none
}

// Path names, in the order of the table.
const (
	pathPlain        = "plain"
	pathSocat        = "socat"
	pathPorthole     = "porthole" // the raw carrier
	pathPortholeWS   = "porthole-ws"
	pathPortholePoll = "porthole-poll"
)

// portholeNames are the paths through the gateway, one per carrier.
var portholeNames = []string{pathPorthole, pathPortholeWS, pathPortholePoll}

// carrierOf is the carrier each porthole path forces: the Dialer's auto
// choice is never used.
var carrierOf = map[string]string{
	pathPorthole:     porthole.Raw,
	pathPortholeWS:   porthole.WebSocket,
	pathPortholePoll: porthole.Poll,
}

var pathNames = append([]string{pathPlain, pathSocat}, portholeNames...)

func (e *env) paths() []path {
	var d net.Dialer
	plainAddr := map[string]string{"echo": e.echo.addr(), "sink": e.sink.addr()}
	ps := []path{{
		name: pathPlain,
		dial: func(ctx context.Context, svc string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", plainAddr[svc])
		},
	}}
	sp := path{name: pathSocat}
	if e.socatErr != nil {
		sp.skip = e.socatErr.Error()
	} else {
		socatAddr := map[string]string{"echo": e.socatEcho.addr, "sink": e.socatSink.addr}
		sp.dial = func(ctx context.Context, svc string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", socatAddr[svc])
		}
		sp.relay = e.socatEcho.cmd.Process.Pid
	}
	ps = append(ps, sp)
	for _, name := range portholeNames {
		ps = append(ps, portholePath(name, e.gw))
	}
	return ps
}

// portholePath is the porthole path name through gateway g: porthole.Dial
// with the path's carrier.
func portholePath(name string, g *gatewayProc) path {
	d := &porthole.Dialer{Carrier: carrierOf[name]}
	return path{
		name: name,
		dial: func(ctx context.Context, svc string) (net.Conn, error) {
			return porthole.Dial(ctx, g.url+"/"+svc, d)
		},
		relay: g.cmd.Process.Pid,
	}
}

// backend is a TCP server on loopback, the service at the end of every path.
type backend struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startBackend(serve func(*net.TCPConn)) (*backend, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	be := &backend{ln: ln, conns: make(map[net.Conn]struct{})}
	be.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			be.mu.Lock()
			be.conns[c] = struct{}{}
			be.mu.Unlock()
			be.wg.Go(func() {
				serve(c.(*net.TCPConn))
				c.Close()
				be.mu.Lock()
				delete(be.conns, c)
				be.mu.Unlock()
			})
		}
	})
	return be, nil
}

func (be *backend) addr() string { return be.ln.Addr().String() }

// close stops accepting, closes the connections still open, and waits for
// their goroutines.
func (be *backend) close() {
	be.ln.Close()
	be.mu.Lock()
	for c := range be.conns {
		c.Close()
	}
	be.mu.Unlock()
	be.wg.Wait()
}

// serveEcho sends back what it reads; at EOF it half-closes.
func serveEcho(c *net.TCPConn) {
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				c.CloseWrite()
			}
			return
		}
	}
}

// serveSink reads until EOF, then answers the byte count as 8 bytes, big
// endian, so the client knows every byte arrived.
func serveSink(c *net.TCPConn) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	var ack [8]byte
	binary.BigEndian.PutUint64(ack[:], uint64(n))
	c.Write(ack[:])
	c.CloseWrite()
}

// socatProc is a socat relay in fork mode: the parent accepts, each
// connection gets a forked child that dials the backend.
type socatProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	addr string
}

// startSocat runs socat listening on a loopback port the kernel picks,
// relaying to backend.
//
// This socat (1.7.4, Debian bookworm) has no ACCEPT-FD, so it cannot take a
// listener from us. It binds port 0 itself, and the port is read back from
// the kernel: the inode of socat's own listening socket, found through
// /proc/PID/fd, is looked up in /proc/PID/net/tcp. Nothing else can take the
// port in between (unlike picking a free port and handing its number over),
// and socat runs without -d -d, whose log lines would name the port but cost
// it writes on every connection. The only wait is for socat's listen(2):
// /proc is polled, bounded by procTimeout, until the socket is there.
//
// Options beyond the defaults: backlog=4096 (socat's default of 5 would
// refuse connections under the tunnel-rate load; Go listens with
// somaxconn), nodelay on both sides (Go sets TCP_NODELAY on every
// connection), reuseaddr. The transfer buffer stays at socat's default 8 KiB.
func startSocat(backend string) (*socatProc, error) {
	bin, err := exec.LookPath("socat")
	if err != nil {
		return nil, fmt.Errorf("socat not found (apt-get install socat): %w", err)
	}
	cmd := exec.Command(bin,
		"TCP4-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay",
		"TCP4:"+backend+",nodelay")
	cmd.Stderr = os.Stderr
	// Should this process die without stopping socat, the kernel does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting socat: %w", err)
	}
	s := &socatProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	port, err := listeningPort(cmd.Process.Pid, s.done)
	if err != nil {
		s.stop()
		return nil, err
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return s, nil
}

// listeningPort returns the port of the TCP socket process pid listens on,
// waiting up to procTimeout for it to appear.
func listeningPort(pid int, exited <-chan struct{}) (int, error) {
	deadline := time.Now().Add(procTimeout)
	for {
		port, err := findListeningPort(pid)
		if err != nil || port != 0 {
			return port, err
		}
		select {
		case <-exited:
			return 0, fmt.Errorf("socat (pid %d) exited before listening; see its messages above", pid)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("socat (pid %d) did not listen within %v", pid, procTimeout)
		}
	}
}

// findListeningPort returns the port of pid's listening TCP socket, or 0.
func findListeningPort(pid int) (int, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return 0, err
	}
	inodes := make(map[string]bool)
	for _, ent := range ents {
		link, err := os.Readlink(fdDir + "/" + ent.Name())
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	if len(inodes) == 0 {
		return 0, nil
	}
	tab, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0, err
	}
	// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
	for _, line := range strings.Split(string(tab), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return 0, fmt.Errorf("reading /proc/%d/net/tcp: %q: %w", pid, f[1], err)
		}
		return int(port), nil
	}
	return 0, nil
}

// children returns the PIDs of socat's forked children.
func (s *socatProc) children() ([]int, error) {
	pid := s.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// stop ends socat: the children still running (normally none, their
// connections are closed by then), then the parent, each by its PID.
func (s *socatProc) stop() {
	if kids, err := s.children(); err == nil {
		for _, pid := range kids {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(procTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// procCPU returns the CPU time process pid has used, user and system, with
// that of its children it has waited for (socat's forked children, once
// reaped). The resolution is the kernel's USER_HZ, 10ms.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	const userHZ = 100 // USER_HZ, fixed in the Linux ABI for /proc
	var ticks int64
	for _, s := range f[11:15] { // utime stime cutime cstime: fields 14-17
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// procKiB reads a "Name:   123 kB" field from a /proc status-like file.
func procKiB(file, field string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s", field, file)
}

// gatewayProc is a porthole gateway (gateway.New + Serve) in a process of
// its own: this test binary started again with helperEnv set. Its stdin and
// stdout carry a line protocol: "stats" answers a JSON gatewayStats. When
// its stdin closes it shuts down and exits. The WebSocket relays of
// wslib_test.go run as the same kind of helper process.
type gatewayProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	done chan struct{}
	url  string
	mu   sync.Mutex // one stats exchange at a time
}

// gatewayStats is what the gateway process reports about itself.
type gatewayStats struct {
	RSS          int64 // VmRSS after runtime.GC, bytes
	RSSScavenged int64 // VmRSS after debug.FreeOSMemory, bytes
	HeapAlloc    int64 // live heap after the GC, bytes
	StackInuse   int64 // goroutine stacks, bytes
	Goroutines   int
	FDs          int // open file descriptors
	PipeFDs      int // of which pipes (splice(2) holds a pipe per direction)
	Tunnels      int // open tunnels, as the gateway counts them
}

// startGateway starts a gateway process serving routes ("PATH=tcp://ADDR,...").
// The listener is bound here and handed over as file descriptor 3, so the
// gateway's address is known before it starts and connections made early
// wait in the backlog: no readiness wait. cpuProfile and memProfile, when
// set, name profile files the process writes (memProfile at each "stats").
// wrap, when not empty, is a command the process runs under (strace, perf).
func startGateway(routes string, wrap []string, cpuProfile, memProfile string) (*gatewayProc, error) {
	return startHelper(wrap,
		helperEnv+"="+routes,
		helperLogEnv+"="+*gwLog,
		helperCPUProfEnv+"="+cpuProfile,
		helperMemProfEnv+"="+memProfile,
	)
}

// startHelper starts this test binary again as a helper process: a gateway,
// or a WebSocket relay (wslib_test.go). env, added to this process's
// environment, tells TestMain which one. It gets a listener bound here as
// file descriptor 3, answers "stats" on its stdin (answerStats), and exits
// when its stdin closes.
func startHelper(wrap []string, env ...string) (*gatewayProc, error) {
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
	args := append(wrap, exe, "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stderr = os.Stderr
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
	g := &gatewayProc{cmd: cmd, in: in, out: bufio.NewReader(out), done: make(chan struct{}),
		url: "http://" + ln.Addr().String()}
	go func() {
		cmd.Wait()
		close(g.done)
	}()
	return g, nil
}

// stats asks the gateway process for its memory figures.
func (g *gatewayProc) stats() (gatewayStats, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var st gatewayStats
	if _, err := io.WriteString(g.in, "stats\n"); err != nil {
		return st, fmt.Errorf("gateway process: %w", err)
	}
	type result struct {
		line []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := g.out.ReadBytes('\n')
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return st, fmt.Errorf("gateway process: %w", r.err)
		}
		return st, json.Unmarshal(r.line, &st)
	case <-time.After(procTimeout):
		return st, errors.New("gateway process did not answer stats in time")
	}
}

// stop closes the gateway's stdin, which makes it shut down and exit, and
// kills it (by its PID) if it has not within procTimeout.
func (g *gatewayProc) stop() {
	g.in.Close()
	select {
	case <-g.done:
	case <-time.After(procTimeout):
		g.cmd.Process.Kill()
		<-g.done
	}
}

// gatewayMain is the gateway process: it serves routes on the listener at
// file descriptor 3 until its stdin closes.
func gatewayMain(routes string) int {
	if os.Getenv(helperMemProfEnv) != "" {
		runtime.MemProfileRate = 4096
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "bench gateway:", err)
		return 1
	}
	var rs []gateway.Route
	for kv := range strings.SplitSeq(routes, ",") {
		p, target, _ := strings.Cut(kv, "=")
		svc, err := service.Parse(target)
		if err != nil {
			return fail(err)
		}
		rs = append(rs, gateway.Route{Path: p, Service: svc})
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv(helperLogEnv))); err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	gw, err := gateway.New(&gateway.Options{Routes: rs, Logger: log})
	if err != nil {
		return fail(err)
	}
	lf := os.NewFile(3, "listener")
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return fail(err)
	}
	if f := os.Getenv(helperCPUProfEnv); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			return fail(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fail(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()

	if err := answerStats(gw.OpenTunnels, os.Getenv(helperMemProfEnv)); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	gw.Shutdown(ctx)
	<-served
	return 0
}

// answerStats is a helper process's side of the stats exchange: it answers
// each "stats" line on stdin with selfStats, Tunnels set from open, as a JSON
// line on stdout, after writing a heap profile to memProfile when that is
// set. It returns when stdin closes.
func answerStats(open func() int, memProfile string) error {
	sc := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		if sc.Text() != "stats" {
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		st := selfStats()
		st.Tunnels = open()
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

func selfStats() gatewayStats {
	var st gatewayStats
	runtime.GC()
	rss, _ := procKiB("/proc/self/status", "VmRSS")
	st.RSS = rss << 10
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.HeapAlloc = int64(ms.HeapAlloc)
	st.StackInuse = int64(ms.StackInuse)
	st.Goroutines = runtime.NumGoroutine()
	st.FDs, st.PipeFDs = countFDs("/proc/self/fd")
	debug.FreeOSMemory()
	rss, _ = procKiB("/proc/self/status", "VmRSS")
	st.RSSScavenged = rss << 10
	return st
}

// countFDs counts the file descriptors in dir (/proc/PID/fd), and the pipes
// among them.
func countFDs(dir string) (fds, pipes int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, ent := range ents {
		fds++
		if link, err := os.Readlink(dir + "/" + ent.Name()); err == nil && strings.HasPrefix(link, "pipe:") {
			pipes++
		}
	}
	return fds, pipes
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
