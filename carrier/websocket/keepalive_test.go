package websocket_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// pingInterval is the keep-alive interval of these tests' gateways.
const pingInterval = 100 * time.Millisecond

// TestPingsKeepIdleTunnel: the gateway pings an idle tunnel every
// interval; a client that answers stays connected well past two
// intervals, and the tunnel still carries bytes.
func TestPingsKeepIdleTunnel(t *testing.T) {
	gw := start(t, gateway.Options{PingInterval: pingInterval})
	forBoth(t, func(t *testing.T, useTLS bool) {
		// Taken before the handshake, so what is measured is never less
		// than what the gateway's timer counts.
		start := time.Now()
		ws := testgw.OpenWS(t, gw, useTLS, "/echo")
		const pings = 5
		for i := range pings {
			f, err := ws.ReadFrame()
			if err != nil {
				t.Fatalf("after %d pings in %v: %v", i, time.Since(start), err)
			}
			if f.Op != testgw.OpPing {
				t.Fatalf("an idle tunnel got opcode %d, want only pings", f.Op)
			}
			ws.Send(t, testgw.ClientFrame(testgw.OpPong, f.Payload))
		}
		took := time.Since(start)
		t.Logf("%d pings in %v", pings, took)
		if took < pings*pingInterval || took > pings*pingInterval+3*time.Second {
			t.Errorf("%d pings came in %v, want one every %v", pings, took, pingInterval)
		}
		echoFrame(t, ws, "still here after 5 intervals")
	})
}

// TestSilentClientCut: a client that answers no ping and sends nothing is
// cut after about two intervals, and the service sees its tunnel end.
func TestSilentClientCut(t *testing.T) {
	ends := make(chan readEnd, 1)
	gw := start(t, gateway.Options{PingInterval: pingInterval, Routes: []gateway.Route{
		{Path: "/record", Service: recorder(ends, false)},
	}})
	forBoth(t, func(t *testing.T, useTLS bool) {
		start := time.Now() // before the handshake: see TestPingsKeepIdleTunnel
		ws := testgw.OpenWS(t, gw, useTLS, "/record")
		pings := 0
		for {
			f, err := ws.ReadFrame()
			if err == io.EOF || testgw.IsReset(err) {
				break
			}
			if err != nil {
				t.Fatalf("after %d pings in %v: %v", pings, time.Since(start), err)
			}
			if f.Op != testgw.OpPing {
				t.Fatalf("a silent client got opcode %d, want only pings", f.Op)
			}
			pings++
		}
		cut := time.Since(start)
		t.Logf("cut after %v and %d pings", cut, pings)
		if pings == 0 {
			t.Errorf("cut without a ping")
		}
		if cut < 2*pingInterval || cut > 3*time.Second {
			t.Errorf("cut after %v, want after two intervals of %v", cut, pingInterval)
		}
		if end := awaitEnd(t, ends); end.err == nil || !strings.Contains(end.err.Error(), "not even a pong") {
			t.Errorf("the service's read ended with %v, want the error that says why the tunnel was cut", end.err)
		}
	})
}

// TestHalfClosedNotCut: after the client's Close it can answer no ping,
// yet a service that takes several intervals to reply still gets its
// reply through.
func TestHalfClosedNotCut(t *testing.T) {
	gw := start(t, gateway.Options{PingInterval: pingInterval, Routes: []gateway.Route{
		{Path: "/slow", Service: service.Handler(func(c net.Conn) {
			defer c.Close()
			io.Copy(io.Discard, c)
			<-time.After(5 * pingInterval) // a slow service, not a synchronisation
			io.WriteString(c, "late reply")
		})},
	}})
	forBoth(t, func(t *testing.T, useTLS bool) {
		ws := testgw.OpenWS(t, gw, useTLS, "/slow")
		ws.Send(t, closeFrame(1000, ""))
		c := ws.ExpectClose(t, 1000)
		if string(c.Data) != "late reply" {
			t.Fatalf("after its Close the client got %q, want %q", c.Data, "late reply")
		}
	})
}

// TestUnansweredCloseCut: once the service has ended, the gateway sends its
// Close; a client that never answers it (and sends nothing) is cut after
// about two intervals instead of holding the tunnel for ever.
func TestUnansweredCloseCut(t *testing.T) {
	served := make(chan struct{}, 2)
	gw := start(t, gateway.Options{PingInterval: pingInterval, Routes: []gateway.Route{
		{Path: "/bye", Service: service.Handler(func(c net.Conn) {
			io.WriteString(c, "bye")
			c.(interface{ CloseWrite() error }).CloseWrite()
			io.Copy(io.Discard, c) // until the tunnel ends
			c.Close()
			served <- struct{}{}
		})},
	}})
	forBoth(t, func(t *testing.T, useTLS bool) {
		ws := testgw.OpenWS(t, gw, useTLS, "/bye")
		closeSeen := time.Time{}
		for {
			f, err := ws.ReadFrame()
			if err == io.EOF || testgw.IsReset(err) {
				break
			}
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if f.Op == testgw.OpClose && closeSeen.IsZero() {
				closeSeen = time.Now()
			}
		}
		if closeSeen.IsZero() {
			t.Fatal("the tunnel ended without the gateway's Close")
		}
		if cut := time.Since(closeSeen); cut > 3*time.Second {
			t.Errorf("cut %v after the unanswered Close, want about two intervals of %v", cut, pingInterval)
		}
		select {
		case <-served:
		case <-time.After(testgw.WaitLimit):
			t.Fatal("the service's tunnel did not end")
		}
	})
}
