package bench

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/proc"
)

// BenchmarkWSLib* choose the WebSocket library for porthole's WebSocket
// carrier (issue 3) by measurement: for each candidate (wsLibs), a bare
// relay on that library (wsrelay_test.go) between the same library's
// client (wsclient_test.go) and a TCP backend. The figures, one table, are
// printed after the run with the other tables; docs/benchmarks.md has them
// under "Choosing the WebSocket library".

const (
	wsStreamBytes = 1 << 30  // one op of BenchmarkWSLibStream
	wsSmokeBytes  = 32 << 20 // the same when -benchtime counts iterations (the smoke check)
)

// wsStreamSize returns what one op of BenchmarkWSLibStream sends: 1 GiB,
// or, when -benchtime is a count of iterations (the smoke check's
// -benchtime 1x), 32 MiB, so that the check stays quick.
func wsStreamSize() int64 {
	if f := flag.Lookup("test.benchtime"); f != nil && strings.HasSuffix(f.Value.String(), "x") {
		return wsSmokeBytes
	}
	return wsStreamBytes
}

// wsEnv is what the WebSocket benchmarks share: the backends and, for each
// library, a long-lived relay process in front of them (the memory
// benchmark starts fresh ones). Each is started on first use and stopped by
// TestMain.
type wsEnv struct {
	echo, sink *backend
	mu         sync.Mutex
	relays     map[string]*proc.Helper // by library
}

var (
	wsEnvOnce sync.Once
	theWSEnv  *wsEnv
	wsEnvErr  error
)

func getWSEnv(b *testing.B) *wsEnv {
	b.Helper()
	wsEnvOnce.Do(func() { theWSEnv, wsEnvErr = startWSEnv() })
	if wsEnvErr != nil {
		b.Fatal(wsEnvErr)
	}
	return theWSEnv
}

func startWSEnv() (*wsEnv, error) {
	e := &wsEnv{relays: make(map[string]*proc.Helper)}
	var err error
	if e.echo, err = startBackend(serveEcho); err != nil {
		return nil, err
	}
	if e.sink, err = startBackend(serveCountedSink); err != nil {
		e.echo.close()
		return nil, err
	}
	return e, nil
}

func (e *wsEnv) routes() string {
	return "/echo=tcp://" + e.echo.addr() + ",/sink=tcp://" + e.sink.addr()
}

// startWSRelay starts a relay process for lib, under the command wrap
// when it is not empty.
func (e *wsEnv) startWSRelay(lib wsLib, wrap []string) (*proc.Helper, error) {
	return proc.StartHelper(wrap, nil, wsRelayEnv+"="+lib.name, wsRelayRoutesEnv+"="+e.routes())
}

// relay returns lib's long-lived relay process, starting it on first use.
func (e *wsEnv) relay(lib wsLib) (*proc.Helper, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.relays[lib.name]; g != nil {
		return g, nil
	}
	g, err := e.startWSRelay(lib, strings.Fields(*gwWrap))
	if err != nil {
		return nil, err
	}
	e.relays[lib.name] = g
	return g, nil
}

// stopWSEnv stops the relays and the backends, if they were started.
func stopWSEnv() {
	e := theWSEnv
	if e == nil {
		return
	}
	for _, g := range e.relays {
		g.Stop()
	}
	e.echo.close()
	e.sink.close()
}

// wsKey is the name lib's figures are recorded under, apart from the main
// benchmarks' paths: porthole-ws is the name of a library and of a path.
func wsKey(lib string) string { return "wslib/" + lib }

// wsPath is the path through relay process g with lib's client; its
// figures are recorded under wsKey.
func wsPath(lib wsLib, g *proc.Helper) path {
	base := "ws://" + g.Addr + "/"
	return path{
		name: wsKey(lib.name),
		dial: func(ctx context.Context, svc string) (net.Conn, error) {
			return lib.dial(ctx, base+svc)
		},
		relay: g.PID(),
	}
}

// forWSLibs runs bench as a sub-benchmark for each library, with the path
// through its long-lived relay.
func forWSLibs(b *testing.B, bench func(b *testing.B, p path)) {
	e := getWSEnv(b)
	for _, lib := range wsLibs {
		b.Run(lib.name, func(b *testing.B) {
			g, err := e.relay(lib)
			if err != nil {
				b.Fatal(err)
			}
			bench(b, wsPath(lib, g))
		})
	}
}

// BenchmarkWSLibStream sends 1 GiB (wsStreamSize) in 32 KiB binary
// messages through each library's relay to the TCP sink, and waits for the
// sink's count: single-stream throughput, and the relay process's CPU time
// per GiB.
func BenchmarkWSLibStream(b *testing.B) {
	forWSLibs(b, func(b *testing.B, p path) {
		size := wsStreamSize()
		msg := make([]byte, wsMsgSize)
		for i := range msg {
			msg[i] = byte(i)
		}
		b.SetBytes(size)
		cpu0, err := proc.CPU(p.relay)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := wsStream(p, size, msg); err != nil {
				b.Fatal(err)
			}
		}
		cpu1, err := proc.CPU(p.relay)
		if err != nil {
			b.Fatal(err)
		}
		total := float64(size) * float64(b.N)
		record(b, p.name, "stream", total/b.Elapsed().Seconds()/1e6)
		cpu := (cpu1 - cpu0).Seconds() / (total / (1 << 30))
		b.ReportMetric(cpu, "relay-cpu-s/GiB")
		record(b, p.name, "streamcpu", cpu)
	})
}

// wsStream sends size bytes to the sink in messages of len(msg): first the
// size, 8 bytes big endian (a WebSocket has no half-close to mark the end),
// then the bytes; then it checks the sink's count.
func wsStream(p path, size int64, msg []byte) error {
	c, err := dialFor(p, "sink", opTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], uint64(size))
	if _, err := c.Write(head[:]); err != nil {
		return fmt.Errorf("%s: writing the size: %w", p.name, err)
	}
	for sent := int64(0); sent < size; {
		n := min(int64(len(msg)), size-sent)
		if _, err := c.Write(msg[:n]); err != nil {
			return fmt.Errorf("%s: writing after %d bytes: %w", p.name, sent, err)
		}
		sent += n
	}
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return fmt.Errorf("%s: reading the sink's count: %w", p.name, err)
	}
	if got := int64(binary.BigEndian.Uint64(head[:])); got != size {
		return fmt.Errorf("%s: the sink got %d bytes, want %d", p.name, got, size)
	}
	return nil
}

// serveCountedSink reads an 8-byte big-endian length, then that many bytes,
// and answers the count it read, 8 bytes, big endian.
func serveCountedSink(c *net.TCPConn) {
	c.SetDeadline(time.Now().Add(opTimeout))
	var head [8]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return
	}
	want := int64(binary.BigEndian.Uint64(head[:]))
	buf := make([]byte, 256<<10)
	var n int64
	for n < want {
		m, err := c.Read(buf[:min(int64(len(buf)), want-n)])
		n += int64(m)
		if err != nil {
			break
		}
	}
	binary.BigEndian.PutUint64(head[:], uint64(n))
	c.Write(head[:])
}

// BenchmarkWSLibRoundTrip sends 64 bytes and waits for their echo, one
// message at a time over one WebSocket, through each library's relay to the
// TCP echo backend; p50 and p99 as BenchmarkRoundTrip.
func BenchmarkWSLibRoundTrip(b *testing.B) {
	forWSLibs(b, benchRoundTrip)
}

// BenchmarkWSLibIdleMemory holds idleTunnels WebSockets open, idle after one
// round trip each, through a fresh relay process per iteration, and
// measures its growth as BenchmarkIdleMemory does for the gateway: VmRSS
// after a GC, Go heap and stacks, goroutines and file descriptors.
func BenchmarkWSLibIdleMemory(b *testing.B) {
	e := getWSEnv(b)
	for _, lib := range wsLibs {
		b.Run(lib.name, func(b *testing.B) {
			idleProc(b, wsKey(lib.name),
				func() (*proc.Helper, error) { return e.startWSRelay(lib, nil) },
				func(g *proc.Helper) path { return wsPath(lib, g) })
		})
	}
}

// The columns of the WebSocket table: key, label, decimals.
var wsCols = []struct {
	key, label string
	prec       int
}{
	{"stream", "MB/s", 0},
	{"streamcpu", "relay CPU s/GiB", 2},
	{"p50", "p50 µs", 1},
	{"p99", "p99 µs", 1},
	{"mem", "KiB/conn", 1},
	{"mem.heap", "heap KiB/conn", 1},
	{"mem.stack", "stacks KiB/conn", 1},
	{"goroutines", "goroutines/conn", 1},
	{"fds", "fds/conn", 1},
}

// printWSLibReport writes the WebSocket libraries' figures as Markdown
// tables, if any ran.
func printWSLibReport(w io.Writer) {
	var libs []string
	runs := 0
	results.Lock()
	for _, lib := range wsLibs {
		if len(results.v[wsKey(lib.name)]) > 0 {
			libs = append(libs, lib.name)
		}
		for _, vs := range results.v[wsKey(lib.name)] {
			runs = max(runs, len(vs))
		}
	}
	results.Unlock()
	if len(libs) == 0 {
		return
	}
	of := ""
	if runs > 1 {
		of = fmt.Sprintf(", medians of %d runs", runs)
	}
	fmt.Fprintf(w, "\n### WebSocket libraries, bare relay (%s/%s, %d CPUs%s)\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), of)
	table := func(value func(lib, key string, prec int) string) {
		head := []string{"library"}
		for _, c := range wsCols {
			head = append(head, c.label)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
		fmt.Fprintf(w, "| --- |%s\n", strings.Repeat(" ---: |", len(wsCols)))
		for _, lib := range libs {
			cells := []string{lib}
			for _, c := range wsCols {
				cells = append(cells, value(wsKey(lib), c.key, c.prec))
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	table(cell)
	if runs > 1 {
		fmt.Fprintf(w, "\nSpread over the runs, min–max:\n\n")
		table(spread)
	}
	fmt.Fprintf(w, "\nMB/s: one stream of %d MiB per op in %d KiB binary messages, client → relay → TCP sink; relay CPU: the relay process's user+system time over it.\n",
		wsStreamSize()>>20, wsMsgSize>>10)
	fmt.Fprintf(w, "p50/p99: 64 B binary message echoed through the relay by a TCP echo backend.\n")
	fmt.Fprintf(w, "Per conn: growth of a fresh relay process with %d idle WebSockets open (VmRSS after runtime.GC; live heap; goroutine stacks; goroutines; file descriptors, the backend's socket included).\n", idleTunnels)
	fmt.Fprintln(w)
}
