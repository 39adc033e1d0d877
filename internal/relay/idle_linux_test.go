package relay_test

import (
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/relay"
)

// pipeFDs counts this process's open pipe file descriptors.
func pipeFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list file descriptors: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
}

// TestIdleRelayHoldsNoPipes checks that a relay waiting for bytes holds no
// splice pipes: io.Copy between TCP connections would keep a pipe (two
// descriptors) per direction of every idle tunnel, on top of its sockets.
func TestIdleRelayHoldsNoPipes(t *testing.T) {
	const tunnels = 50
	before := pipeFDs(t)
	var wg sync.WaitGroup
	var clients []*net.TCPConn
	for range tunnels {
		client, a := tcpPair(t)
		b, service := tcpPair(t)
		wg.Go(func() { relay.Pipe(a, b) })
		// One round trip, so each direction has spliced once and is idle
		// again, waiting for more.
		client.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(service, buf); err != nil {
			t.Fatal(err)
		}
		service.Write(buf)
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, client, service)
	}
	// Go keeps spliced pipes in a pool for reuse, and the race detector
	// makes the pool drop some, left for the garbage collector to close:
	// neither is per tunnel. Collect until the count settles, or give up.
	held := pipeFDs(t) - before
	for deadline := time.Now().Add(5 * time.Second); held >= tunnels && time.Now().Before(deadline); {
		runtime.GC()
		runtime.Gosched()
		held = pipeFDs(t) - before
	}
	for _, c := range clients {
		c.Close()
	}
	wg.Wait()
	if held >= tunnels {
		t.Errorf("%d idle tunnels hold %d pipe descriptors; want no pipes per idle tunnel", tunnels, held)
	}
}
