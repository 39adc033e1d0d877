package bench

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/internal/proc"
)

// Flags for looking inside the gateway process (go test ... -args -gw.log=info).
var (
	gwLog        = flag.String("gw.log", "warn", "log `level` of the gateway process (debug, info, warn, error); its logs go to stderr")
	gwCPUProfile = flag.String("gw.cpuprofile", "", "write a CPU profile of the long-lived gateway process (throughput, round trip and tunnel rate) to `file`")
	gwMemProfile = flag.String("gw.memprofile", "", "write a heap profile of the memory benchmark's gateway process, taken with its idle tunnels open, to `file`")
	gwWrap       = flag.String("gw.wrap", "", "run the long-lived gateway process, and the WebSocket benchmarks' long-lived relay processes, under this `command` prefix, split at spaces, as in \"strace -c -f -o /tmp/gw.strace\" or \"taskset -c 1\"")
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
	backends map[string]*backend   // by service
	socat    map[string]*socatProc // a socat relay to each backend, by service
	socatErr error                 // why the socat rows are skipped
	gw       *proc.Helper
}

// services are the backends every path reaches, by route name.
var services = []struct {
	name  string
	serve func(*net.TCPConn)
}{
	{"echo", serveEcho},
	{"sink", serveSink},
	{"source", serveSource},
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
	e := &env{backends: make(map[string]*backend), socat: make(map[string]*socatProc)}
	for _, svc := range services {
		be, err := startBackend(svc.serve)
		if err != nil {
			e.stop()
			return nil, err
		}
		e.backends[svc.name] = be
	}
	for _, svc := range services {
		s, err := startSocat(e.backends[svc.name].addr())
		if err != nil {
			e.socatErr = err
			break
		}
		e.socat[svc.name] = s
	}
	var err error
	e.gw, err = startGateway(e.routes(), strings.Fields(*gwWrap), *gwCPUProfile, "")
	if err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

func (e *env) routes() string {
	var routes []string
	for _, svc := range services {
		routes = append(routes, "/"+svc.name+"=tcp://"+e.backends[svc.name].addr())
	}
	return strings.Join(routes, ",")
}

// stopEnv stops the shared environment if it was started.
func stopEnv() {
	if theEnv != nil {
		theEnv.stop()
	}
}

func (e *env) stop() {
	if e.gw != nil {
		e.gw.Stop()
	}
	for _, s := range e.socat {
		s.stop()
	}
	for _, be := range e.backends {
		be.close()
	}
}

// A path is one way from the benchmark's client to a backend service,
// one of services.
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
	ps := []path{{
		name: pathPlain,
		dial: func(ctx context.Context, svc string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", e.backends[svc].addr())
		},
	}}
	sp := path{name: pathSocat}
	if e.socatErr != nil {
		sp.skip = e.socatErr.Error()
	} else {
		sp.dial = func(ctx context.Context, svc string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", e.socat[svc].addr)
		}
		sp.relay = e.socat["echo"].cmd.Process.Pid
	}
	ps = append(ps, sp)
	for _, name := range portholeNames {
		ps = append(ps, portholePath(name, e.gw))
	}
	return ps
}

// portholePath is the porthole path name through gateway g: porthole.Dial
// with the path's carrier.
func portholePath(name string, g *proc.Helper) path {
	d := &porthole.Dialer{Carrier: carrierOf[name]}
	return path{
		name: name,
		dial: func(ctx context.Context, svc string) (net.Conn, error) {
			return porthole.Dial(ctx, g.URL+"/"+svc, d)
		},
		relay: g.PID(),
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

// serveSource reads a size, 8 bytes big endian, sends that many bytes
// and half-closes, then waits for the client's end.
func serveSource(c *net.TCPConn) {
	var size [8]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return
	}
	buf := make([]byte, writeSize)
	for left := int64(binary.BigEndian.Uint64(size[:])); left > 0; {
		m, err := c.Write(buf[:min(int64(len(buf)), left)])
		left -= int64(m)
		if err != nil {
			return
		}
	}
	c.CloseWrite()
	io.Copy(io.Discard, c)
}

// serveSink reads until EOF, then answers the byte count as 8 bytes, big
// endian, so the client knows every byte arrived.
func serveSink(c *net.TCPConn) {
	n, err := readToEOF(c, make([]byte, 256<<10))
	if err != nil {
		return
	}
	var ack [8]byte
	binary.BigEndian.PutUint64(ack[:], uint64(n))
	c.Write(ack[:])
	c.CloseWrite()
}

// readToEOF reads r through buf until its EOF, dropping the bytes, and
// returns how many there were; an error other than EOF is returned with
// the count so far. Each read fills as much of buf as has arrived, as the
// sink and the download client of these benchmarks read.
func readToEOF(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
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
// listener from us. It binds port 0 itself, and proc.ListeningPort reads the
// port back from the kernel; socat runs without -d -d, whose log lines would
// name the port but cost it writes on every connection. The only wait is for
// socat's listen(2), bounded by proc.Timeout.
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
	port, err := proc.ListeningPort(cmd.Process.Pid, s.done)
	if err != nil {
		s.stop()
		return nil, err
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return s, nil
}

// children returns the PIDs of socat's forked children.
func (s *socatProc) children() ([]int, error) { return proc.Children(s.cmd.Process.Pid) }

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
	case <-time.After(proc.Timeout):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// startGateway starts a gateway process (proc.StartGateway) serving routes
// ("PATH=tcp://ADDR,..."), logging at -gw.log. cpuProfile and memProfile,
// when set, name profile files the process writes (memProfile at each
// Stats). wrap, when not empty, is a command the process runs under
// (strace, perf).
func startGateway(routes string, wrap []string, cpuProfile, memProfile string) (*proc.Helper, error) {
	return proc.StartGateway(&proc.GatewayOptions{
		Routes:     routes,
		LogLevel:   *gwLog,
		Wrap:       wrap,
		CPUProfile: cpuProfile,
		MemProfile: memProfile,
	})
}
