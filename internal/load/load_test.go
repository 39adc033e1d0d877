package load

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"go.uber.org/goleak"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/internal/proc"
)

var (
	nTunnels = flag.Int("load.tunnels", 200, "tunnels open at once: a third per carrier (raw, websocket, poll), each third half to the built-in echo and half to a TCP echo backend")
	loadFor  = flag.Duration("load.duration", 5*time.Second, "how long every tunnel keeps echoing")
	seedFlag = flag.Uint64("load.seed", 0, "seed of the random streams; 0 picks one, which the test logs")
	gwLogTo  = flag.String("load.gwlog", "", "copy the gateway process's log (one line per tunnel) to this `file`")
	only     = flag.String("load.carriers", "", "comma-separated `carriers` the load runs over, to look at one alone; empty for all three")
)

// Bounds, margins and sizes.
const (
	dialers     = 64               // tunnels in their handshake at a time
	dialTimeout = 30 * time.Second // bound on each tunnel's dial and handshake
	drainLimit  = 30 * time.Second // after the load: bound on the last echoes, and on the gateway logging every tunnel's end
	warmPer     = 2                // warm-up tunnels per carrier and route
	warmFor     = 300 * time.Millisecond

	// The most descriptors one tunnel holds in one process: a poll
	// tunnel's HTTP connections (up to three while one is replaced) and
	// the TCP backend's socket.
	fdsPerTunnel = 4
	fdsReserved  = 256

	// Once every tunnel is over, the gateway's figures are back near the
	// baseline taken after the warm-up, both after a GC with freed memory
	// returned to the kernel: its resident memory within rssMargin plus
	// rssPerTunnel for each tunnel of the load (what the runtime keeps:
	// heap spans left part-used, stack and buffer pools), its live heap
	// within heapMargin, and its goroutines and descriptors within
	// leftSlack (one left per tunnel would be hundreds).
	rssMargin    = 16 << 20
	rssPerTunnel = 8 << 10
	heapMargin   = 4 << 20
	leftSlack    = 16
	// settleTries bounds the Stats taken until the gateway's count of
	// open tunnels, goroutines and descriptors have settled: it logs a
	// tunnel's end just before it gives back its place and closes the
	// HTTP connections of a poll session as their requests finish.
	settleTries = 50
)

var (
	carriers = []string{porthole.Raw, porthole.WebSocket, porthole.Poll}
	routes   = []string{"/echo", "/tcp"} // the built-in echo, the TCP echo backend
)

func TestMain(m *testing.M) {
	if code, ok := proc.GatewayMain(); ok {
		os.Exit(code)
	}
	if code, ok := proc.EchoMain(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// TestLoad holds -load.tunnels tunnels open at once through a gateway
// process, a third per carrier, half to the built-in echo and half to a TCP
// echo backend, each echoing random chunks for -load.duration; see the
// package doc.
func TestLoad(t *testing.T) {
	if *only != "" {
		carriers = strings.Split(*only, ",")
		for _, c := range carriers {
			if !slices.Contains([]string{porthole.Raw, porthole.WebSocket, porthole.Poll}, c) {
				t.Fatalf("-load.carriers %q: %q is not raw, websocket or poll", *only, c)
			}
		}
	}
	n, d := *nTunnels, *loadFor
	if n < len(carriers)*len(routes) || d <= 0 {
		t.Fatalf("-load.tunnels %d -load.duration %v: want at least %d tunnels, one per carrier and route, and a positive duration",
			n, d, len(carriers)*len(routes))
	}
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-load.seed to run the same streams again)", seed)
	need := uint64(fdsReserved + fdsPerTunnel*n)
	raiseFileLimit(t, need)

	var copyTo *os.File
	if *gwLogTo != "" {
		f, err := os.Create(*gwLogTo)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		copyTo = f
	}
	glog := newGatewayLog(nil)
	if copyTo != nil {
		glog.copyTo = copyTo
	}
	// The TCP echo backend runs in a process of its own: in this one, which
	// the clients saturate, it was starved, and tunnels to it fell far
	// behind tunnels to the built-in echo (docs/load.md).
	backend, err := proc.StartEcho()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(backend.Stop)
	gw, err := proc.StartGateway(&proc.GatewayOptions{
		Routes:   "/echo=echo,/tcp=tcp://" + backend.Addr,
		LogLevel: "info",
		Stderr:   glog,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	checkFileLimit(t, gw.PID(), need)
	defer func() {
		if r := glog.problemReport(); r != "" {
			t.Error(r)
		}
	}()

	// Warm up: a few tunnels of each kind, then the baseline.
	warm := plan(warmPer*len(carriers)*len(routes), seed^0x5eed)
	for _, o := range run(gw.URL, warm, warmFor, nil) {
		if o.err != nil {
			t.Fatalf("warm-up: %v", o)
		}
	}
	if err := glog.waitClosed(len(warm), drainLimit, gw.Done()); err != nil {
		t.Fatal(err)
	}
	_, warmBytes, _, _ := glog.snapshot()
	base := settled(t, gw, nil)

	// The load. Halfway through, the gateway's VmRSS and its count of open
	// tunnels: cheap questions, where a GC in a saturated gateway takes
	// seconds. The count's answer may be read late, as the clients saturate
	// this process: it may take the rest of the load.
	specs := plan(n, seed)
	var under underLoad
	gwCPU0, _ := proc.CPU(gw.PID())
	selfCPU0, _ := proc.CPU(os.Getpid())
	backendCPU0, _ := proc.CPU(backend.PID())
	start := time.Now()
	outcomes := run(gw.URL, specs, d, func(opened time.Duration, over <-chan struct{}) {
		t.Logf("%d tunnels opened in %v", n, opened.Round(time.Millisecond))
		select {
		case <-time.After(d / 2):
			under = sample(gw, d/2)
		case <-over:
			under.err = fmt.Errorf("the load was over before its half")
		}
	})
	took := time.Since(start)
	gwCPU1, _ := proc.CPU(gw.PID())
	selfCPU1, _ := proc.CPU(os.Getpid())
	backendCPU1, _ := proc.CPU(backend.PID())
	cpu := [3]time.Duration{gwCPU1 - gwCPU0, selfCPU1 - selfCPU0, backendCPU1 - backendCPU0}
	if err := glog.waitClosed(len(warm)+n, drainLimit, gw.Done()); err != nil {
		t.Error(err)
	}
	after := settled(t, gw, &base)
	peakKiB, err := proc.KiB(fmt.Sprintf("/proc/%d/status", gw.PID()), "VmHWM")
	if err != nil {
		t.Error(err)
	}

	// The tunnels' own verdicts, then the gateway's count of their bytes.
	sum := summarize(outcomes)
	nErr := 0
	for _, o := range outcomes {
		if o.err != nil {
			if nErr < maxProblems {
				t.Errorf("%v", o)
			}
			nErr++
		}
	}
	_, gwBytes, _, nProblems := glog.snapshot()
	for _, k := range sum.keys {
		s := sum.by[k]
		got := flow{gwBytes[k].in - warmBytes[k].in, gwBytes[k].out - warmBytes[k].out}
		if nErr == 0 && (got.in != s.sent || got.out != s.received) {
			t.Errorf("%s: the gateway counted %d bytes in and %d out; the clients sent %d and received %d",
				k, got.in, got.out, s.sent, s.received)
		}
	}
	if under.err != nil {
		t.Errorf("the gateway under load: %v", under.err)
	} else if under.tunnels != n {
		t.Errorf("halfway through, the gateway counted %d open tunnels, want %d", under.tunnels, n)
	}

	report(t, n, d, took, cpu, sum, nErr+nProblems, base, under, after, peakKiB<<10)
	if nErr > 0 {
		t.Errorf("%d tunnels of %d failed", nErr, n)
	}
	checkBaseline(t, n, base, after)
}

// underLoad is what the gateway says halfway through the load.
type underLoad struct {
	tunnels int
	rss     int64 // VmRSS, bytes, without a GC
	err     error
}

// sample reads the gateway's VmRSS, then asks for its count of open
// tunnels, waiting up to wait for the answer.
func sample(gw *proc.Helper, wait time.Duration) underLoad {
	var u underLoad
	kib, err := proc.KiB(fmt.Sprintf("/proc/%d/status", gw.PID()), "VmRSS")
	if u.rss, u.err = kib<<10, err; err != nil {
		return u
	}
	u.tunnels, u.err = gw.Tunnels(wait)
	return u
}

// spec is one tunnel of a load.
type spec struct {
	id             int
	carrier, route string
	seed           uint64
}

// plan spreads n tunnels over the carriers, then over the routes.
func plan(n int, seed uint64) []spec {
	specs := make([]spec, n)
	for i := range specs {
		specs[i] = spec{id: i, carrier: carriers[i%len(carriers)], route: routes[i/len(carriers)%len(routes)], seed: seed + uint64(i)}
	}
	return specs
}

// outcome is how one tunnel of a load went.
type outcome struct {
	spec
	res echoResult
	err error
}

func (o outcome) String() string {
	return fmt.Sprintf("tunnel %d (%s to %s, seed %d): %v", o.id, o.carrier, o.route, o.seed, o.err)
}

// run opens a tunnel to url for each spec, dialers at a time, and once all
// are open has each echo for d (echo), then closes them. opened, when not
// nil, runs in its own goroutine once all are open, given the time that
// took and a channel closed once the echoes are over; run waits for it
// before it returns.
func run(url string, specs []spec, d time.Duration, opened func(took time.Duration, over <-chan struct{})) []outcome {
	outs := make([]outcome, len(specs))
	conns := make([]net.Conn, len(specs))
	dialerFor := make(map[string]*porthole.Dialer)
	for _, c := range carriers {
		dialerFor[c] = &porthole.Dialer{Carrier: c, HandshakeTimeout: dialTimeout}
	}
	start := time.Now()
	sem := make(chan struct{}, dialers)
	var wg sync.WaitGroup
	for i, s := range specs {
		outs[i].spec = s
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			defer cancel()
			conns[i], outs[i].err = porthole.Dial(ctx, url+s.route, dialerFor[s.carrier])
		})
	}
	wg.Wait()
	var side sync.WaitGroup
	over := make(chan struct{})
	if opened != nil {
		took := time.Since(start)
		side.Go(func() { opened(took, over) })
	}
	stop := time.Now().Add(d)
	for i, conn := range conns {
		if conn == nil {
			continue
		}
		wg.Go(func() {
			defer conn.Close()
			conn.SetDeadline(stop.Add(drainLimit))
			outs[i].res, outs[i].err = echo(conn, outs[i].seed, stop)
		})
	}
	wg.Wait()
	close(over)
	side.Wait()
	return outs
}

// kind names the tunnels of one carrier to one route, as in "raw /tcp":
// the key of the figures, the tunnels' and the gateway's.
func kind(carrier, route string) string { return carrier + " " + route }

// sums is what the tunnels of each kind did, and all of them.
type sums struct {
	keys []string // the kinds, carrier by carrier
	by   map[string]*sum
	all  sum
}

type sum struct {
	tunnels, failed, chunks int
	sent, received          int64
	perTunnel               []int // chunks of each tunnel, for the spread
}

func (s *sum) add(o sum) {
	s.tunnels += o.tunnels
	s.failed += o.failed
	s.chunks += o.chunks
	s.sent += o.sent
	s.received += o.received
	s.perTunnel = append(s.perTunnel, o.perTunnel...)
}

// spread is the least, the median and the most chunks a tunnel echoed.
func (s sum) spread() string {
	if len(s.perTunnel) == 0 {
		return ""
	}
	c := slices.Sorted(slices.Values(s.perTunnel))
	return fmt.Sprintf("%d / %d / %d", c[0], c[len(c)/2], c[len(c)-1])
}

func summarize(outs []outcome) sums {
	ss := sums{by: make(map[string]*sum)}
	for _, c := range carriers {
		for _, r := range routes {
			ss.keys = append(ss.keys, kind(c, r))
			ss.by[kind(c, r)] = &sum{}
		}
	}
	for _, o := range outs {
		one := sum{tunnels: 1, chunks: o.res.chunks, sent: o.res.sent, received: o.res.received, perTunnel: []int{o.res.chunks}}
		if o.err != nil {
			one.failed = 1
		}
		ss.by[kind(o.carrier, o.route)].add(one)
		ss.all.add(one)
	}
	return ss
}

// settled takes the gateway's figures once its tunnels are over: Stats
// until it counts no open tunnel and, when base is given, its goroutines
// and descriptors are within leftSlack of base's, at most settleTries
// times. Each Stats is a full GC, and the second of two in a row is taken:
// the first leaves sync.Pool's victim cache in the live heap.
func settled(t *testing.T, gw *proc.Helper, base *proc.Stats) proc.Stats {
	t.Helper()
	var st proc.Stats
	for try := 0; try < settleTries; try++ {
		var err error
		if st, err = gw.Stats(); err != nil {
			t.Fatal(err)
		}
		if st.Tunnels == 0 && (base == nil || st.Goroutines <= base.Goroutines+leftSlack && st.FDs <= base.FDs+leftSlack) {
			break
		}
	}
	st2, err := gw.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st2.Tunnels != 0 {
		t.Errorf("the gateway counts %d open tunnels after they all ended, want 0", st2.Tunnels)
	}
	return st2
}

// checkBaseline checks that the gateway's figures after a load of n
// tunnels are back near the baseline.
func checkBaseline(t *testing.T, n int, base, after proc.Stats) {
	t.Helper()
	what, was, is := "VmRSS", base.RSSScavenged, after.RSSScavenged
	if raceEnabled {
		what, was, is = "memory held by the Go runtime (with -race; VmRSS counts the race detector's shadow memory, never given back)",
			base.RuntimeHeld, after.RuntimeHeld
	}
	if lim := was + rssMargin + int64(n)*rssPerTunnel; is > lim {
		t.Errorf("the gateway's %s after the load is %s, more than the baseline %s plus the margin (%s)",
			what, mib(is), mib(was), mib(lim-was))
	}
	if after.HeapAlloc > base.HeapAlloc+heapMargin {
		t.Errorf("the gateway's live heap after the load is %s, more than the baseline %s plus %s",
			mib(after.HeapAlloc), mib(base.HeapAlloc), mib(heapMargin))
	}
	if after.Goroutines > base.Goroutines+leftSlack {
		t.Errorf("the gateway runs %d goroutines after the load, %d before it", after.Goroutines, base.Goroutines)
	}
	if after.FDs > base.FDs+leftSlack {
		t.Errorf("the gateway holds %d file descriptors after the load, %d before it", after.FDs, base.FDs)
	}
}

// report logs the load's figures, as docs/load.md shows them.
// cpu is the CPU time the gateway process, this one (the clients) and the
// TCP echo backend's used over the load.
func report(t *testing.T, n int, d, took time.Duration, cpu [3]time.Duration, ss sums, nErrors int, base proc.Stats, under underLoad, after proc.Stats, peak int64) {
	var b strings.Builder
	fmt.Fprintf(&b, "%d tunnels for %v (%v from the first dial to the last echo), %d errors\n", n, d, took.Round(time.Millisecond), nErrors)
	fmt.Fprintf(&b, "CPU time: gateway %v, clients %v, TCP echo backend %v, on %d CPUs\n\n", cpu[0], cpu[1], cpu[2], runtime.NumCPU())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "carrier\troute\ttunnels\tfailed\tchunks\tper tunnel: least / median / most\tsent MiB\techoed MiB\tMiB/s each way\t")
	row := func(c, r string, s sum) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%.1f\t%.1f\t%.1f\t\n", c, r, s.tunnels, s.failed, s.chunks, s.spread(),
			float64(s.sent)/(1<<20), float64(s.received)/(1<<20), float64(s.received)/(1<<20)/d.Seconds())
	}
	for _, c := range carriers {
		var per sum
		for _, r := range routes {
			s := *ss.by[kind(c, r)]
			row(c, r, s)
			per.add(s)
		}
		row(c, "both", per)
	}
	row("all", "", ss.all)
	tw.Flush()
	fmt.Fprintf(&b, "\ngateway process; baseline and after: after a GC, with freed memory returned to the kernel:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tbaseline\thalfway\tpeak (VmHWM)\tafter\t")
	fmt.Fprintf(tw, "VmRSS\t%s\t%s\t%s\t%s\t\n", mib(base.RSSScavenged), mib(under.rss), mib(peak), mib(after.RSSScavenged))
	fmt.Fprintf(tw, "held by Go\t%s\t\t\t%s\t\n", mib(base.RuntimeHeld), mib(after.RuntimeHeld))
	fmt.Fprintf(tw, "live heap\t%s\t\t\t%s\t\n", mib(base.HeapAlloc), mib(after.HeapAlloc))
	fmt.Fprintf(tw, "goroutines\t%d\t\t\t%d\t\n", base.Goroutines, after.Goroutines)
	fmt.Fprintf(tw, "descriptors\t%d\t\t\t%d\t\n", base.FDs, after.FDs)
	fmt.Fprintf(tw, "open tunnels\t%d\t%d\t\t%d\t\n", base.Tunnels, under.tunnels, after.Tunnels)
	tw.Flush()
	t.Log("\n" + b.String())
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// raiseFileLimit raises this process's soft limit on open files to its
// hard limit (Go does so at start; this makes it sure), and fails the test
// when that cannot hold need descriptors.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			t.Fatal(err)
		}
	}
	if l.Cur < need {
		t.Fatalf("the open-file limit is %d; %d tunnels need %d: raise the hard limit (ulimit -Hn, as root) or ask for fewer with -load.tunnels",
			l.Cur, *nTunnels, need)
	}
}

// checkFileLimit fails the test when process pid's open-file limit cannot
// hold need descriptors. The gateway, a Go program, raises its soft limit
// to the hard one as it starts.
func checkFileLimit(t *testing.T, pid int, need uint64) {
	t.Helper()
	soft, _, err := proc.OpenFileLimit(pid)
	if err != nil {
		t.Fatal(err)
	}
	if soft >= 0 && uint64(soft) < need {
		t.Fatalf("the gateway process's open-file limit is %d; %d tunnels need %d: raise the hard limit (ulimit -Hn, as root)",
			soft, *nTunnels, need)
	}
}
