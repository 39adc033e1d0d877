package proc

import (
	"fmt"
	"os"

	"github.com/porthole/porthole/internal/relay"
)

// echoEnv turns the test binary into a TCP echo helper.
const echoEnv = "PORTHOLE_HELPER_ECHO"

// StartEcho starts a TCP echo server in a helper process: every connection
// to its Addr gets back what it sends, and its half-close after that. A
// load that saturates its own process starves a backend that shares it;
// one of its own gets its own CPU time. Stop ends it.
func StartEcho() (*Helper, error) {
	return StartHelper(nil, nil, echoEnv+"=1")
}

// EchoMain runs the echo helper when this process is one (StartEcho), and
// reports isHelper false otherwise. Call it first in TestMain.
func EchoMain() (code int, isHelper bool) {
	if os.Getenv(echoEnv) == "" {
		return 0, false
	}
	ln, err := Listener()
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo helper:", err)
		return 1, true
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go relay.Loop(c)
		}
	}()
	err = AnswerStats(func() int { return 0 }, "")
	ln.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo helper:", err)
		return 1, true
	}
	return 0, true
}
