package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/proc"
)

// The loads.
const (
	streamBytes   = 256 << 20 // one benchmark op: this many bytes to the sink
	streams       = 8         // concurrent streams in BenchmarkStreams8, sharing streamBytes
	writeSize     = 256 << 10 // the client's write size
	echoSize      = 64        // round-trip message
	rateWorkers   = 16        // tunnels opened at a time in BenchmarkTunnelRate
	idleTunnels   = 1000      // tunnels held open in BenchmarkIdleMemory
	idleWorkers   = 16        // opened at a time
	rttWarmup     = 200       // untimed round trips before the timed ones
	deadlineEvery = 256       // round trips between refreshes of the connection's deadline
)

func TestMain(m *testing.M) {
	if lib := os.Getenv(wsRelayEnv); lib != "" {
		os.Exit(wsRelayMain(lib, os.Getenv(wsRelayRoutesEnv)))
	}
	if code, ok := proc.GatewayMain(); ok {
		os.Exit(code)
	}
	code := m.Run()
	stopEnv()
	stopWSEnv()
	printReport(os.Stdout)
	printWSLibReport(os.Stdout)
	os.Exit(code)
}

// forPaths runs bench as a sub-benchmark for each path.
func forPaths(b *testing.B, bench func(b *testing.B, p path)) {
	e := getEnv(b)
	for _, p := range e.paths() {
		b.Run(p.name, func(b *testing.B) {
			if p.skip != "" {
				b.Skip(p.skip)
			}
			bench(b, p)
		})
	}
}

// BenchmarkStream1 sends streamBytes one way over one stream to the sink
// and waits for its byte count: single-stream throughput.
func BenchmarkStream1(b *testing.B) {
	forPaths(b, func(b *testing.B, p path) { benchStreams(b, p, 1, "stream1") })
}

// BenchmarkStreams8 sends streamBytes split over 8 concurrent streams:
// aggregate throughput.
func BenchmarkStreams8(b *testing.B) {
	forPaths(b, func(b *testing.B, p path) { benchStreams(b, p, streams, "stream8") })
}

func benchStreams(b *testing.B, p path, n int, key string) {
	buf := make([]byte, writeSize)
	for i := range buf {
		buf[i] = byte(i)
	}
	per := int64(streamBytes / n)
	b.SetBytes(per * int64(n))
	for b.Loop() {
		errs := make(chan error, n)
		for range n {
			go func() { errs <- stream(p, per, buf) }()
		}
		for range n {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
	}
	mbps := float64(per*int64(n)) * float64(b.N) / b.Elapsed().Seconds() / 1e6
	record(b, p.name, key, mbps)
}

// stream sends size bytes to the sink over a new connection, half-closes,
// and checks the sink's count.
func stream(p path, size int64, buf []byte) error {
	c, err := dialFor(p, "sink", opTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	for sent := int64(0); sent < size; {
		m, err := c.Write(buf[:min(int64(len(buf)), size-sent)])
		sent += int64(m)
		if err != nil {
			return fmt.Errorf("%s: writing: %w", p.name, err)
		}
	}
	if err := closeWrite(c); err != nil {
		return fmt.Errorf("%s: half-close: %w", p.name, err)
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("%s: reading the sink's count: %w", p.name, err)
	}
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != size {
		return fmt.Errorf("%s: the sink got %d bytes, want %d", p.name, got, size)
	}
	return nil
}

// BenchmarkDownload1 has the source send streamBytes over one stream to
// the client: single-stream throughput from the service, the way a
// WebSocket carrier's bytes go unmasked.
func BenchmarkDownload1(b *testing.B) {
	forPaths(b, func(b *testing.B, p path) {
		b.SetBytes(streamBytes)
		buf := make([]byte, writeSize)
		for b.Loop() {
			if err := download(p, streamBytes, buf); err != nil {
				b.Fatal(err)
			}
		}
		record(b, p.name, "download1", float64(streamBytes)*float64(b.N)/b.Elapsed().Seconds()/1e6)
	})
}

// download asks the source for size bytes over a new connection and reads
// them to its EOF.
func download(p path, size int64, buf []byte) error {
	c, err := dialFor(p, "source", opTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	var ask [8]byte
	binary.BigEndian.PutUint64(ask[:], uint64(size))
	if _, err := c.Write(ask[:]); err != nil {
		return fmt.Errorf("%s: asking the source: %w", p.name, err)
	}
	got, err := readToEOF(c, buf)
	if err != nil {
		return fmt.Errorf("%s: reading after %d bytes: %w", p.name, got, err)
	}
	if got != size {
		return fmt.Errorf("%s: the source sent %d bytes, want %d", p.name, got, size)
	}
	return nil
}

func closeWrite(c net.Conn) error {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("%T cannot half-close", c)
	}
	return cw.CloseWrite()
}

// BenchmarkRoundTrip sends 64 bytes and waits for their echo, one at a
// time over one connection, and reports the p50 and p99 of the round trips.
func BenchmarkRoundTrip(b *testing.B) {
	forPaths(b, benchRoundTrip)
}

func benchRoundTrip(b *testing.B, p path) {
	c, err := dialFor(p, "echo", opTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, got := make([]byte, echoSize), make([]byte, echoSize)
	rt := func() error {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		_, err := io.ReadFull(c, got)
		return err
	}
	for range rttWarmup {
		if err := rt(); err != nil {
			b.Fatal(err)
		}
	}
	var samples []time.Duration
	for b.Loop() {
		if len(samples)%deadlineEvery == 0 {
			c.SetDeadline(time.Now().Add(opTimeout))
		}
		t0 := time.Now()
		if err := rt(); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	slices.Sort(samples)
	p50, p99 := micros(percentile(samples, 50)), micros(percentile(samples, 99))
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(p99, "p99-µs")
	record(b, p.name, "p50", p50)
	record(b, p.name, "p99", p99)
}

// percentile returns the nearest-rank q-th percentile of sorted samples.
func percentile(sorted []time.Duration, q int) time.Duration {
	i := (len(sorted)*q + 99) / 100
	return sorted[max(i-1, 0)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkTunnelRate opens tunnels rateWorkers at a time: each op dials,
// does the handshake, sends one byte and reads its echo, then closes.
func BenchmarkTunnelRate(b *testing.B) {
	forPaths(b, benchTunnelRate)
}

func benchTunnelRate(b *testing.B, p path) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, rateWorkers)
	)
	var cpu0 time.Duration
	if p.relay != 0 {
		cpu0, _ = proc.CPU(p.relay)
	}
	b.ResetTimer()
	for range min(rateWorkers, b.N) {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				c, err := openTunnel(p, "echo")
				if err != nil {
					errs <- err
					return
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "tunnels/s")
	record(b, p.name, "rate", rate)
	if p.relay != 0 {
		// A socat child still finishing is counted once reaped: at most
		// rateWorkers of b.N. The resolution (10ms) needs b.N in thousands.
		cpu1, err := proc.CPU(p.relay)
		if err != nil {
			b.Fatal(err)
		}
		us := micros(cpu1-cpu0) / float64(b.N)
		b.ReportMetric(us, "relay-cpu-µs/tunnel")
		record(b, p.name, "ratecpu", us)
	}
}

// dialFor dials svc on p within dialTimeout and bounds what follows, the
// connection's reads and writes, by limit.
func dialFor(p path, svc string, limit time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	c, err := p.dial(ctx, svc)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(limit))
	return c, nil
}

// openTunnel dials svc on p and makes one 1-byte round trip.
func openTunnel(p path, svc string) (net.Conn, error) {
	c, err := dialFor(p, svc, dialTimeout)
	if err != nil {
		return nil, err
	}
	var one [1]byte
	if _, err := c.Write(one[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: first byte: %w", p.name, err)
	}
	if _, err := io.ReadFull(c, one[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: first byte's echo: %w", p.name, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// openIdle opens n tunnels, idleWorkers at a time, each after one round
// trip, and returns them open.
func openIdle(p path, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, idleWorkers)
	)
	for range idleWorkers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				c, err := openTunnel(p, "echo")
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	close(errs)
	err := <-errs
	if err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// BenchmarkIdleMemory holds idleTunnels tunnels open, idle after one round
// trip each, and measures what they cost the relay in memory. Each
// iteration starts a fresh relay process, so its figures are its own:
//
//   - porthole, porthole-ws, porthole-poll: the gateway process's VmRSS
//     after a GC, with the tunnels of the path's carrier open, minus the
//     same before (after a warm-up of a few tunnels); also the Go runtime's
//     heap and stacks, the same way. A fresh gateway for each path.
//   - socat: the sum of the forked children's PSS (smaps_rollup): one
//     child per connection, sharing the parent's pages.
//
// The plain path has no relay, so it has no row here.
func BenchmarkIdleMemory(b *testing.B) {
	forPaths(b, func(b *testing.B, p path) {
		switch {
		case p.name == pathSocat:
			idleSocat(b, getEnv(b))
		case carrierOf[p.name] != "":
			idlePorthole(b, getEnv(b), p.name)
		default:
			b.Skip("no relay process on the plain path")
		}
	})
}

func idleSocat(b *testing.B, e *env) {
	var sum, iters float64
	for b.Loop() {
		s, err := startSocat(e.backends["echo"].addr())
		if err != nil {
			b.Fatal(err)
		}
		kib, err := socatIdle(s)
		s.stop()
		if err != nil {
			b.Fatal(err)
		}
		sum += kib
		iters++
	}
	kib := sum / iters
	b.ReportMetric(kib, "KiB/tunnel")
	record(b, pathSocat, "mem", kib)
}

// socatIdle opens idleTunnels connections through s and returns its
// children's PSS per connection, in KiB.
func socatIdle(s *socatProc) (float64, error) {
	var d net.Dialer
	p := path{name: pathSocat, dial: func(ctx context.Context, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", s.addr)
	}}
	conns, err := openIdle(p, idleTunnels)
	if err != nil {
		return 0, err
	}
	defer closeAll(conns)
	kids, err := s.children()
	if err != nil {
		return 0, err
	}
	if len(kids) != idleTunnels {
		return 0, fmt.Errorf("socat has %d children, want %d", len(kids), idleTunnels)
	}
	var pss int64
	for _, pid := range kids {
		kib, err := proc.KiB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")
		if err != nil {
			return 0, err
		}
		pss += kib
	}
	return float64(pss) / idleTunnels, nil
}

// idlePorthole measures the porthole path name on fresh gateway processes.
func idlePorthole(b *testing.B, e *env, name string) {
	idleProc(b, name,
		func() (*proc.Helper, error) { return startGateway(e.routes(), nil, "", *gwMemProfile) },
		func(g *proc.Helper) path { return portholePath(name, g) })
}

// idleProc measures what idle tunnels cost a relay that runs as a helper
// process (the gateway, a WebSocket relay): each iteration starts a fresh
// process with start, opens the tunnels with the path pathTo gives for it,
// and takes the growth of its figures (procIdle). The figures are recorded
// under name.
func idleProc(b *testing.B, name string, start func() (*proc.Helper, error), pathTo func(*proc.Helper) path) {
	var sum proc.Stats
	var iters int64
	for b.Loop() {
		g, err := start()
		if err != nil {
			b.Fatal(err)
		}
		d, err := procIdle(g, pathTo(g))
		g.Stop()
		if err != nil {
			b.Fatal(err)
		}
		sum.RSS += d.RSS
		sum.RSSScavenged += d.RSSScavenged
		sum.HeapAlloc += d.HeapAlloc
		sum.StackInuse += d.StackInuse
		sum.Goroutines += d.Goroutines
		sum.FDs += d.FDs
		sum.PipeFDs += d.PipeFDs
		iters++
	}
	per := func(v int64) float64 { return float64(v) / float64(iters) / idleTunnels / 1024 }
	rss := per(sum.RSS)
	b.ReportMetric(rss, "KiB/tunnel")
	b.ReportMetric(per(sum.HeapAlloc+sum.StackInuse), "go-KiB/tunnel")
	record(b, name, "mem", rss)
	record(b, name, "mem.scavenged", per(sum.RSSScavenged))
	record(b, name, "mem.go", per(sum.HeapAlloc+sum.StackInuse))
	record(b, name, "mem.heap", per(sum.HeapAlloc))
	record(b, name, "mem.stack", per(sum.StackInuse))
	count := func(v int) float64 { return float64(v) / float64(iters) / idleTunnels }
	record(b, name, "goroutines", count(sum.Goroutines))
	record(b, name, "fds", count(sum.FDs))
	record(b, name, "pipefds", count(sum.PipeFDs))
}

// procIdle warms g up, then opens idleTunnels tunnels through it along p and
// returns the growth of g's figures.
func procIdle(g *proc.Helper, p path) (proc.Stats, error) {
	var d proc.Stats
	warm, err := openIdle(p, idleWorkers)
	if err != nil {
		return d, err
	}
	closeAll(warm)
	if err := waitTunnels(g, 0); err != nil {
		return d, err
	}
	before, err := g.Stats()
	if err != nil {
		return d, err
	}
	conns, err := openIdle(p, idleTunnels)
	if err != nil {
		return d, err
	}
	defer closeAll(conns)
	after, err := g.Stats()
	if err != nil {
		return d, err
	}
	if after.Tunnels != idleTunnels {
		return d, fmt.Errorf("%s: the relay counts %d open tunnels, want %d", p.name, after.Tunnels, idleTunnels)
	}
	return proc.Stats{
		RSS:          after.RSS - before.RSS,
		RSSScavenged: after.RSSScavenged - before.RSSScavenged,
		HeapAlloc:    after.HeapAlloc - before.HeapAlloc,
		StackInuse:   after.StackInuse - before.StackInuse,
		Goroutines:   after.Goroutines - before.Goroutines,
		FDs:          after.FDs - before.FDs,
		PipeFDs:      after.PipeFDs - before.PipeFDs,
	}, nil
}

// waitTunnels waits, up to proc.Timeout, until g counts n open tunnels.
func waitTunnels(g *proc.Helper, n int) error {
	deadline := time.Now().Add(proc.Timeout)
	for {
		st, err := g.Stats()
		if err != nil {
			return err
		}
		if st.Tunnels == n {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the relay's tunnels did not close in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
