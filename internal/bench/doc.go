// Package bench holds porthole's benchmarks: the same loads run over plain
// TCP on loopback, a socat relay and porthole tunnels to a TCP backend, one
// path per carrier (porthole: raw, porthole-ws: WebSocket, porthole-poll:
// poll, each forced in the Dialer), all through the same gateway process,
// side by side in one run, followed by tables of ratios.
//
// Run them all (the numbers in docs/benchmarks.md come from this; about
// four minutes; the tables give the median of the runs):
//
//	go test -run '^$' -bench . -benchtime 1s -count 5 ./internal/bench
//
// or as a quick smoke check, one iteration of each (about ten seconds):
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/bench
//
// Flags after -args look inside the gateway process: -gw.cpuprofile FILE,
// -gw.memprofile FILE, -gw.log LEVEL, and -gw.wrap 'CMD ARGS' to run it,
// and the WebSocket benchmarks' relays, under strace, perf or taskset.
//
// The socat rows need Debian's socat on PATH (apt-get install socat); without
// it they are skipped. The gateway runs in a process of its own (the test
// binary started again), so its memory and CPU are its own.
//
// BenchmarkWSLib* (wslib_test.go) measure the candidate WebSocket libraries
// for the WebSocket carrier: a bare relay on each library, in a process of
// its own, with that library's client. Each op of BenchmarkWSLibStream
// streams 1 GiB, 32 MiB when -benchtime is a count (the smoke check). Run
// them alone with
//
//	go test -run '^$' -bench WSLib -benchtime 1s -count 10 ./internal/bench
//
// The package has only tests; this file exists for this comment.
package bench
