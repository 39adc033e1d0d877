// Package load proves porthole under load: TestLoad holds many tunnels
// open at once through a gateway in a process of its own (the test binary
// started again, as in internal/bench), a third over each carrier (raw,
// WebSocket, poll), half of each third to the built-in echo and half to a
// TCP echo backend. Each tunnel echoes random chunks of random sizes, 1 B to
// 64 KiB, for the whole run. Every chunk's echo is checked as it returns,
// so a byte lost, duplicated or changed is reported at its chunk and
// stream offset, and a running SHA-256 of each direction is compared at the
// end. Then the tunnels close, the gateway must log every tunnel's end,
// count none open, and be back near its memory baseline (taken after a
// warm-up, after a GC with freed memory returned to the kernel; the margins
// are in load_test.go). Any error fails the test: a dial, a read, a write,
// a mismatch, a byte count of the gateway's that differs from the
// clients', a warning in the gateway's log.
//
// By default, for CI: 200 tunnels for 5 seconds (about 9 s with -race).
// The full run, whose figures are in docs/load.md (without -race, whose
// detector allows no more than 8128 goroutines):
//
//	go test -v -run TestLoad -timeout 10m ./internal/load -load.tunnels 2000 -load.duration 60s
//
// Other flags: -load.seed N runs the same random streams again (a failure
// names its seed); -load.carriers raw,poll loads some carriers alone;
// -load.gwlog FILE keeps the gateway's log, a line per tunnel. The test
// raises its soft limit on open files to the hard one, checks the
// gateway's, and fails early, saying so, when they cannot hold the tunnels.
//
// The package has only tests; this file exists for this comment.
package load
