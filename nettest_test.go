package porthole_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/porthole/porthole"
)

// TestConnContract runs x/net/nettest's net.Conn conformance tests on both
// ends of a tunnel over every carrier, plain and over TLS: the connection
// porthole.Dial returns, and the one a porthole.Listener's Accept returns.
func TestConnContract(t *testing.T) {
	for _, c := range carriers {
		for _, useTLS := range []bool{false, true} {
			name := c + "/http"
			if useTLS {
				name = c + "/https"
			}
			t.Run(name, func(t *testing.T) {
				l, url, d := listenerServer(t, useTLS)
				d.Carrier = c
				t.Run("Dialed", func(t *testing.T) { nettest.TestConn(t, tunnelPipe(t, l, url, d, false)) })
				t.Run("Accepted", func(t *testing.T) { nettest.TestConn(t, tunnelPipe(t, l, url, d, true)) })
			})
		}
	}
}

// pipeLimit bounds one nettest case. The slowest case passes in about a
// tenth of a second under -race; nettest's own limit is a minute per case,
// so a connection the contract break left stuck would hold the run for
// minutes. Closing it at pipeLimit fails the case as surely, sooner.
const pipeLimit = 5 * time.Second

// tunnelPipe makes a pipe of the two ends of a new tunnel: c1 is the end
// under test, the dialed one or (swap) the accepted one.
func tunnelPipe(t *testing.T, l *porthole.Listener, url string, d *porthole.Dialer, swap bool) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		acc := acceptAsync(l)
		dialed, err := porthole.Dial(dialContext(t), url, d)
		if err != nil {
			return nil, nil, nil, err
		}
		got, err := awaitAccept(t, acc)
		if err != nil {
			dialed.Close()
			return nil, nil, nil, err
		}
		var once sync.Once
		closeBoth := func() {
			dialed.Close()
			got.Close()
		}
		watchdog := time.AfterFunc(pipeLimit, func() {
			once.Do(func() {
				t.Errorf("a nettest case still used its tunnel after %v; closed it", pipeLimit)
				closeBoth()
			})
		})
		stop = func() {
			watchdog.Stop()
			once.Do(closeBoth)
		}
		if swap {
			return got, dialed, stop, nil
		}
		return dialed, got, stop, nil
	}
}
