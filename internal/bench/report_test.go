package bench

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// results holds the figures of each benchmark, by path and key: one per
// run of the benchmark (go test -count), each from its final b.N.
var results = struct {
	sync.Mutex
	v    map[string]map[string][]float64
	last map[string]*testing.B // path/key → the benchmark that recorded it last
	runs int                   // the most figures any key has
}{v: make(map[string]map[string][]float64), last: make(map[string]*testing.B)}

// record keeps v as the figure of the current run of benchmark b. Go runs
// a benchmark function again with a larger b.N until it is long enough;
// only the last of those calls counts, so a figure replaces the one before
// it unless a new run (-count) of the benchmark has begun: each run of a
// sub-benchmark has a *testing.B of its own, kept alive here, while its
// calls with growing b.N share one.
func record(b *testing.B, path, key string, v float64) {
	results.Lock()
	defer results.Unlock()
	if results.v[path] == nil {
		results.v[path] = make(map[string][]float64)
	}
	id := path + "/" + key
	vs := results.v[path][key]
	if len(vs) > 0 && results.last[id] == b {
		vs[len(vs)-1] = v
	} else {
		vs = append(vs, v)
	}
	results.last[id] = b
	results.v[path][key] = vs
	results.runs = max(results.runs, len(vs))
}

// result returns the median of a key's figures.
func result(path, key string) (float64, bool) {
	results.Lock()
	defer results.Unlock()
	vs := slices.Clone(results.v[path][key])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// The table's rows: key, label, decimals.
var rows = []struct {
	key, label string
	prec       int
}{
	{"stream1", "1 stream, MB/s", 0},
	{"stream8", "8 streams, aggregate MB/s", 0},
	{"download1", "1 stream from the service, MB/s", 0},
	{"p50", "64 B echo round trip p50, µs", 1},
	{"p99", "64 B echo round trip p99, µs", 1},
	{"rate", fmt.Sprintf("tunnels opened/s (%d at a time)", rateWorkers), 0},
	{"ratecpu", "relay CPU per tunnel opened, µs", 0},
	{"mem", fmt.Sprintf("relay memory per idle tunnel (%d open), KiB", idleTunnels), 1},
}

// printReport writes the results as Markdown tables: the figures with
// their ratios, the carriers beside raw, the gateway's memory in detail,
// and the targets of issues 2 and 4.
func printReport(w io.Writer) {
	results.Lock()
	runs := results.runs
	results.Unlock()
	if !anyRow(pathNames) {
		return // none of these benchmarks ran (only BenchmarkWSLib*, say)
	}
	of := ""
	if runs > 1 {
		of = fmt.Sprintf(", medians of %d runs", runs)
	}
	fmt.Fprintf(w, "\n### Results (%s/%s, %d CPUs%s)\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), of)
	rowTable(w, slices.Concat(pathNames, []string{"porthole/plain", "porthole/socat", "socat/plain"}), pathNames,
		func(key string, prec int) []string {
			return append(cells(pathNames, key, prec, cell),
				ratio(pathPorthole, pathPlain, key), ratio(pathPorthole, pathSocat, key), ratio(pathSocat, pathPlain, key))
		})
	if runs > 1 {
		fmt.Fprintf(w, "\nSpread over the runs, min–max:\n\n")
		rowTable(w, pathNames, pathNames, func(key string, prec int) []string {
			return cells(pathNames, key, prec, spread)
		})
	}
	fmt.Fprintln(w, "\nRatios divide the figures as they stand: above 1 is faster for MB/s and tunnels/s, slower or bigger for µs and KiB.")
	fmt.Fprintln(w, "Relay CPU is the relay process's user+system time (socat's with its reaped children) over the tunnels opened.")
	fmt.Fprintln(w, "Memory: porthole's is the gateway process's VmRSS growth after a GC, a fresh gateway for each carrier; socat's is the sum of its children's PSS. Plain TCP has no relay.")
	printCarriers(w)
	printGatewayMemory(w)
	printTargets(w)
}

// carrierNames returns the carriers of portholeNames, in their order.
func carrierNames() []string {
	cs := make([]string, len(portholeNames))
	for i, p := range portholeNames {
		cs[i] = carrierOf[p]
	}
	return cs
}

// printCarriers writes the porthole paths' figures, each carrier's beside
// raw's, if a carrier other than raw ran.
func printCarriers(w io.Writer) {
	if !anyRow(portholeNames[1:]) {
		return
	}
	fmt.Fprintf(w, "\n### Carriers beside raw\n\n")
	carriers := carrierNames()
	var ratios []string
	for _, c := range carriers[1:] {
		ratios = append(ratios, c+"/"+carriers[0])
	}
	rowTable(w, slices.Concat(carriers, ratios), portholeNames, func(key string, prec int) []string {
		cs := cells(portholeNames, key, prec, cell)
		for _, p := range portholeNames[1:] {
			cs = append(cs, ratio(p, pathPorthole, key))
		}
		return cs
	})
}

// printGatewayMemory writes the gateway's figures per idle tunnel, for each
// carrier, if BenchmarkIdleMemory ran on a porthole path.
func printGatewayMemory(w io.Writer) {
	if !anyResult("mem", portholeNames) {
		return
	}
	fmt.Fprintf(w, "\n### Porthole gateway per idle tunnel (%d open)\n\n", idleTunnels)
	header(w, append([]string{"figure"}, carrierNames()...))
	for _, d := range []struct{ key, label string }{
		{"mem", "VmRSS growth after runtime.GC, KiB"},
		{"mem.scavenged", "VmRSS growth after debug.FreeOSMemory, KiB"},
		{"mem.go", "Go heap (live) + goroutine stacks growth, KiB"},
		{"mem.heap", "of which live heap, KiB"},
		{"mem.stack", "of which goroutine stacks, KiB"},
		{"goroutines", "goroutines"},
		{"fds", "file descriptors"},
		{"pipefds", "of which pipe ends (splice)"},
	} {
		line(w, append([]string{d.label}, cells(portholeNames, d.key, 1, cell)...))
	}
}

// printTargets writes the targets of issue 2 (the raw carrier against
// socat) and issue 4 (the poll carrier against raw).
func printTargets(w io.Writer) {
	targets(w, "Targets (issue 2)")
	target(w, "1-stream throughput ≥ 1.5× socat's", func() (string, bool, bool) {
		ph, ok1 := result(pathPorthole, "stream1")
		so, ok2 := result(pathSocat, "stream1")
		return fmt.Sprintf("%.2f×", ph/so), ph >= 1.5*so, ok1 && ok2
	})
	target(w, "p50 round trip ≤ socat's", func() (string, bool, bool) {
		ph, ok1 := result(pathPorthole, "p50")
		so, ok2 := result(pathSocat, "p50")
		return fmt.Sprintf("%.1f µs vs %.1f µs", ph, so), ph <= so, ok1 && ok2
	})
	target(w, "≥ 5,000 tunnels opened/s", func() (string, bool, bool) {
		ph, ok := result(pathPorthole, "rate")
		return fmt.Sprintf("%.0f/s", ph), ph >= 5000, ok
	})
	target(w, "≤ 16 KiB gateway memory per idle tunnel", func() (string, bool, bool) {
		ph, ok := result(pathPorthole, "mem")
		return fmt.Sprintf("%.1f KiB", ph), ph <= 16, ok
	})

	targets(w, "Targets (issue 4, the poll carrier)")
	target(w, fmt.Sprintf("poll 1-stream throughput (%d MiB) ≥ 25%% of raw's", streamBytes>>20), func() (string, bool, bool) {
		po, ok1 := result(pathPortholePoll, "stream1")
		ra, ok2 := result(pathPorthole, "stream1")
		return fmt.Sprintf("%.0f%% (%.0f vs %.0f MB/s)", 100*po/ra, po, ra), po >= 0.25*ra, ok1 && ok2
	})
	target(w, "poll p50 round trip < 2 ms on loopback", func() (string, bool, bool) {
		po, ok := result(pathPortholePoll, "p50")
		return fmt.Sprintf("%.1f µs", po), po < 2000, ok
	})
	fmt.Fprintln(w)
}

// rowTable writes a table headed "metric" and head, with a line for each
// of rows that some of paths has a figure for: its label, then the cells f
// gives for its key.
func rowTable(w io.Writer, head, paths []string, f func(key string, prec int) []string) {
	header(w, append([]string{"metric"}, head...))
	for _, r := range rows {
		if anyResult(r.key, paths) {
			line(w, append([]string{r.label}, f(r.key, r.prec)...))
		}
	}
}

// header writes a table's head: the first column aligned left, the others
// right.
func header(w io.Writer, cols []string) {
	line(w, cols)
	fmt.Fprintln(w, "| ---"+strings.Repeat(" | ---:", len(cols)-1)+" |")
}

// line writes one line of a table.
func line(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// cells returns value (cell: the median; spread: min–max) of key on each
// of paths.
func cells(paths []string, key string, prec int, value func(path, key string, prec int) string) []string {
	cs := make([]string, len(paths))
	for i, p := range paths {
		cs[i] = value(p, key, prec)
	}
	return cs
}

// targets writes the title and head of a table of targets.
func targets(w io.Writer, title string) {
	fmt.Fprintf(w, "\n### %s\n\n", title)
	fmt.Fprintln(w, "| target | measured | met |")
	fmt.Fprintln(w, "| --- | ---: | --- |")
}

func target(w io.Writer, label string, f func() (got string, met, ok bool)) {
	got, met, ok := f()
	switch {
	case !ok:
		fmt.Fprintf(w, "| %s | not run | |\n", label)
	case met:
		fmt.Fprintf(w, "| %s | %s | yes |\n", label, got)
	default:
		fmt.Fprintf(w, "| %s | %s | **no** |\n", label, got)
	}
}

// anyRow reports whether any of paths has a figure for any of rows.
func anyRow(paths []string) bool {
	for _, r := range rows {
		if anyResult(r.key, paths) {
			return true
		}
	}
	return false
}

// anyResult reports whether any of paths has a figure for key.
func anyResult(key string, paths []string) bool {
	for _, p := range paths {
		if _, ok := result(p, key); ok {
			return true
		}
	}
	return false
}

func cell(path, key string, prec int) string {
	v, ok := result(path, key)
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// spread returns "min–max" of a key's figures.
func spread(path, key string, prec int) string {
	results.Lock()
	vs := slices.Clone(results.v[path][key])
	results.Unlock()
	if len(vs) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.*f–%.*f", prec, slices.Min(vs), prec, slices.Max(vs))
}

func ratio(num, den, key string) string {
	a, ok1 := result(num, key)
	b, ok2 := result(den, key)
	if !ok1 || !ok2 || b == 0 || math.IsNaN(a/b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}
