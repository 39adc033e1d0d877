package load

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gatewayLog is the gateway process's stderr, read line by line as it
// comes: the line it logs at each tunnel's end (the event the test waits
// on: a tunnel is over for the gateway once it has logged it), the bytes
// those lines count per carrier, and every line that says something went
// wrong.
type gatewayLog struct {
	copyTo io.Writer // every line is copied here too, when not nil

	mu       sync.Mutex
	partial  []byte
	closed   int             // "tunnel closed" lines
	bytes    map[string]flow // by carrier, from those lines
	problems []string        // the first maxProblems lines that say something went wrong
	nProblem int             // all of them
	changed  chan struct{}   // closed and replaced at each line
}

// flow is the bytes of a carrier's tunnels as the gateway counts them: in
// from the clients, out to them.
type flow struct{ in, out int64 }

const maxProblems = 20

var (
	closedRe = regexp.MustCompile(`msg="tunnel closed" route=(\S+) carrier=(\S+) .*bytes_in=(\d+) bytes_out=(\d+)`)
	// A line that says something went wrong: a warning or an error, a
	// tunnel that ended with an error, a handshake that failed, a report
	// of the race detector, a panic.
	problemRe = regexp.MustCompile(`level=(WARN|ERROR)|msg="tunnel closed" .* err=|msg="handshake failed"|DATA RACE|^panic:|^fatal error:`)
)

func newGatewayLog(copyTo io.Writer) *gatewayLog {
	return &gatewayLog{copyTo: copyTo, bytes: make(map[string]flow), changed: make(chan struct{})}
}

func (l *gatewayLog) Write(p []byte) (int, error) {
	if l.copyTo != nil {
		l.copyTo.Write(p)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// line takes in one line; l.mu is held.
func (l *gatewayLog) line(s string) {
	if m := closedRe.FindStringSubmatch(s); m != nil {
		l.closed++
		in, _ := strconv.ParseInt(m[3], 10, 64)
		out, _ := strconv.ParseInt(m[4], 10, 64)
		k := kind(m[2], m[1])
		f := l.bytes[k]
		f.in += in
		f.out += out
		l.bytes[k] = f
	}
	if problemRe.MatchString(s) {
		l.nProblem++
		if len(l.problems) < maxProblems {
			l.problems = append(l.problems, s)
		}
	}
}

// snapshot returns the counts so far.
func (l *gatewayLog) snapshot() (closed int, bytes map[string]flow, problems []string, nProblem int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bytes = make(map[string]flow, len(l.bytes))
	for k, v := range l.bytes {
		bytes[k] = v
	}
	return l.closed, bytes, append([]string(nil), l.problems...), l.nProblem
}

// waitClosed waits until the gateway has logged the end of n tunnels, for
// up to limit, or until exited is closed (the process ended).
func (l *gatewayLog) waitClosed(n int, limit time.Duration, exited <-chan struct{}) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		closed, changed := l.closed, l.changed
		l.mu.Unlock()
		if closed >= n {
			return nil
		}
		select {
		case <-changed:
		case <-exited:
			return fmt.Errorf("the gateway process exited having logged the end of %d tunnels of %d", closed, n)
		case <-deadline.C:
			return fmt.Errorf("the gateway logged the end of %d tunnels of %d within %v", closed, n, limit)
		}
	}
}

// problemReport lists the lines that said something went wrong.
func (l *gatewayLog) problemReport() string {
	_, _, problems, n := l.snapshot()
	if n == 0 {
		return ""
	}
	s := fmt.Sprintf("the gateway logged %d problems", n)
	if n > len(problems) {
		s += fmt.Sprintf(", the first %d", len(problems))
	}
	return s + ":\n" + strings.Join(problems, "\n")
}
