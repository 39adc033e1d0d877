package websocket_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// readEnd is how a service's reading of its tunnel ended.
type readEnd struct {
	data []byte
	err  error
	at   time.Time
}

// recorder is a service that reads its tunnel until the end, one byte per
// Read when short (so every held-back byte path is taken), and reports
// what it read on ends, then closes it.
func recorder(ends chan<- readEnd, short bool) service.Handler {
	return func(c net.Conn) {
		defer c.Close()
		var data []byte
		buf := make([]byte, 32<<10)
		if short {
			buf = buf[:1]
		}
		for {
			n, err := c.Read(buf)
			data = append(data, buf[:n]...)
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				ends <- readEnd{data, err, time.Now()}
				return
			}
		}
	}
}

// awaitEnd waits, within waitLimit, for the service's report.
func awaitEnd(t *testing.T, ends <-chan readEnd) readEnd {
	t.Helper()
	select {
	case e := <-ends:
		return e
	case <-time.After(waitLimit):
		t.Fatal("the service's reading did not end")
		return readEnd{}
	}
}

// TestClientCloseIsEOF: a client's Close frame reaches the service as
// EOF after all the bytes, for each code that means a normal end (a Close
// without a code is how browsers and Node's ws close by default); other
// codes reach it as an error naming the code. Either way the gateway then
// answers with its own Close 1000.
func TestClientCloseIsEOF(t *testing.T) {
	ends := make(chan readEnd, 1)
	gw := start(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/record", Service: recorder(ends, false)},
		{Path: "/record-short", Service: recorder(ends, true)},
	}})
	for _, tc := range []struct {
		name  string
		close testgw.Frame
		err   string // a fragment of the service's error; "" for EOF
	}{
		{"1000", closeFrame(1000, "done"), ""},
		{"1001", closeFrame(1001, "page closed"), ""},
		{"NoCode", testgw.ClientFrame(testgw.OpClose, nil), ""},
		{"1011", closeFrame(1011, "client failed"), "1011"},
		{"4000", closeFrame(4000, "application code"), "4000"},
	} {
		for _, path := range []string{"/record", "/record-short"} {
			t.Run(tc.name+path, func(t *testing.T) {
				forBoth(t, func(t *testing.T, useTLS bool) {
					ws := testgw.OpenWS(t, gw, useTLS, path)
					ws.Send(t, frame(testgw.OpBinary, true, "binary, "), frame(testgw.OpText, false, "text \xe2\x82"), frame(testgw.OpContinuation, true, "\xac"), tc.close)
					end := awaitEnd(t, ends)
					if want := "binary, text €"; string(end.data) != want {
						t.Errorf("the service read %q, want %q", end.data, want)
					}
					switch {
					case tc.err == "" && end.err != nil:
						t.Errorf("the service's read ended with %v, want EOF", end.err)
					case tc.err != "" && (end.err == nil || !strings.Contains(end.err.Error(), tc.err)):
						t.Errorf("the service's read ended with %v, want an error naming %s", end.err, tc.err)
					}
					ws.ExpectClose(t, 1000)
				})
			})
		}
	}
}

// TestServiceEOF: when the service ends its stream, the client receives
// every byte, then a Close 1000; once the client answers with its own
// Close, the connection ends.
func TestServiceEOF(t *testing.T) {
	payload := make([]byte, 3<<20+17)
	rand.Read(payload)
	backend := testgw.TCPServer(t, func(c net.Conn) {
		c.Write(payload)
		c.Close()
	})
	gw := start(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/handler", Service: service.Handler(func(c net.Conn) {
			c.Write(payload)
			c.Close()
		})},
		{Path: "/tcp", Service: &service.TCP{Addr: backend}},
	}})
	for _, path := range []string{"/handler", "/tcp"} {
		t.Run(path[1:], func(t *testing.T) {
			forBoth(t, func(t *testing.T, useTLS bool) {
				ws := testgw.OpenWS(t, gw, useTLS, path)
				c := ws.ReadUntilClose(t)
				if !bytes.Equal(c.Data, payload) {
					t.Fatalf("received %d bytes before the Close, want the %d sent (equal prefix %d)", len(c.Data), len(payload), commonPrefix(c.Data, payload))
				}
				if c.Code != 1000 {
					t.Fatalf("the gateway closed with %d %q, want 1000", c.Code, c.Reason)
				}
				// The client's answering Close ends the other direction.
				ws.Send(t, closeFrame(1000, ""))
				ws.ExpectEnd(t)
			})
		})
	}
}

// TestConnectionCut: a client whose TCP connection is cut without a Close
// frame ends the tunnel promptly: an in-process service's Read returns an
// error (not EOF, not a hang), and a TCP backend sees its connection end.
func TestConnectionCut(t *testing.T) {
	ends := make(chan readEnd, 1)
	backendEnds := make(chan readEnd, 1)
	backend := testgw.TCPServer(t, func(c net.Conn) {
		defer c.Close()
		data, err := io.ReadAll(c)
		backendEnds <- readEnd{data, err, time.Now()}
	})
	gw := start(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/record", Service: recorder(ends, false)},
		{Path: "/tcp", Service: &service.TCP{Addr: backend}},
	}})
	for _, tc := range []struct {
		path string
		ends chan readEnd
		err  bool // the service sees an error, not EOF
	}{
		{"/record", ends, true},
		{"/tcp", backendEnds, false}, // the relay closes the backend
	} {
		t.Run(tc.path[1:], func(t *testing.T) {
			forBoth(t, func(t *testing.T, useTLS bool) {
				ws := testgw.OpenWS(t, gw, useTLS, tc.path)
				ws.Send(t, frame(testgw.OpBinary, true, "last words"))
				cut := time.Now()
				ws.Conn.Close()
				end := awaitEnd(t, tc.ends)
				t.Logf("the service saw the cut after %v: %v", end.at.Sub(cut), end.err)
				if string(end.data) != "last words" {
					t.Errorf("the service read %q, want %q", end.data, "last words")
				}
				if tc.err && (end.err == nil || errors.Is(end.err, io.EOF)) {
					t.Errorf("the service's read ended with %v, want an error for the broken connection", end.err)
				}
				if d := end.at.Sub(cut); d > 2*time.Second {
					t.Errorf("the service saw the cut after %v", d)
				}
			})
		})
	}
}

// TestHalfCloseBothWays: after the client's Close the service may keep
// sending, and after the service's end the client may keep sending: each
// direction ends on its own.
func TestHalfCloseBothWays(t *testing.T) {
	ends := make(chan readEnd, 1)
	gw := start(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/after-eof", Service: service.Handler(func(c net.Conn) {
			defer c.Close()
			n, err := io.Copy(io.Discard, c)
			fmt.Fprintf(c, "EOF after %d bytes, err %v", n, err)
		})},
		{Path: "/hello-then-read", Service: service.Handler(func(c net.Conn) {
			defer c.Close()
			io.WriteString(c, "hello")
			c.(interface{ CloseWrite() error }).CloseWrite()
			data, err := io.ReadAll(c)
			ends <- readEnd{data, err, time.Now()}
		})},
	}})
	t.Run("ClientFirst", func(t *testing.T) {
		forBoth(t, func(t *testing.T, useTLS bool) {
			ws := testgw.OpenWS(t, gw, useTLS, "/after-eof")
			ws.Send(t, frame(testgw.OpBinary, true, strings.Repeat("x", 1000)), frame(testgw.OpText, true, "yz"), closeFrame(1000, ""))
			c := ws.ExpectClose(t, 1000)
			if want := "EOF after 1002 bytes, err <nil>"; string(c.Data) != want {
				t.Fatalf("after the client's Close the service sent %q, want %q", c.Data, want)
			}
		})
	})
	t.Run("ServiceFirst", func(t *testing.T) {
		forBoth(t, func(t *testing.T, useTLS bool) {
			ws := testgw.OpenWS(t, gw, useTLS, "/hello-then-read")
			if c := ws.ReadUntilClose(t); string(c.Data) != "hello" || c.Code != 1000 {
				t.Fatalf("the service's stream: %q then Close %d, want %q then 1000", c.Data, c.Code, "hello")
			}
			ws.Send(t, frame(testgw.OpBinary, true, "still "), frame(testgw.OpBinary, true, "sending"), closeFrame(1000, ""))
			end := awaitEnd(t, ends)
			if string(end.data) != "still sending" || end.err != nil {
				t.Errorf("after its own end the service read %q, %v; want %q, EOF", end.data, end.err, "still sending")
			}
			ws.ExpectEnd(t)
		})
	})
}

// TestShutdownWhileWriteBlocked: a tunnel whose client reads nothing, so
// that the gateway's write to it is blocked, is still closed at once when
// Shutdown's deadline passes.
func TestShutdownWhileWriteBlocked(t *testing.T) {
	blocked := make(chan struct{})
	gw := start(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/flood", Service: service.Handler(func(c net.Conn) {
			defer c.Close()
			c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					break // the client reads nothing: the write is stuck
				}
			}
			close(blocked)
			io.Copy(io.Discard, c)
		})},
	}})
	testgw.OpenWS(t, gw, false, "/flood") // and never read
	select {
	case <-blocked:
	case <-time.After(waitLimit):
		t.Fatal("the service's writes never timed out")
	}
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- gw.Stop(t, 500*time.Millisecond) }()
	select {
	case err := <-stopped:
		t.Logf("Shutdown returned %v after %v", err, time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown with a 500ms deadline still blocked after 5s: closing the tunnel waits behind its stuck write")
	}
}

// TestShutdownLingersAtOnce: tunnels whose clients sent their Close and
// then more bytes, to a service still sending, each linger up to a second
// when Shutdown closes them (so that the reset the unread bytes would
// cause destroys nothing the clients have not read): all at the same
// time, not one after the other.
func TestShutdownLingersAtOnce(t *testing.T) {
	const tunnels = 4
	ended := make(chan struct{}, tunnels)
	gw := start(t, gateway.Options{PingInterval: -1, Routes: []gateway.Route{
		{Path: "/talker", Service: service.Handler(func(c net.Conn) {
			defer c.Close()
			io.Copy(io.Discard, c) // until the client's Close
			ended <- struct{}{}
			for { // and on, to a client that reads nothing, until Shutdown
				if _, err := c.Write([]byte("still talking")); err != nil {
					return
				}
			}
		})},
	}})
	// More than the gateway's read buffer holds, so that bytes stay
	// queued in its socket.
	stream := append(testgw.ClientFrame(testgw.OpClose, testgw.ClosePayload(1000, "")).Bytes(), bytes.Repeat([]byte("after the Close "), 1<<10)...)
	for range tunnels {
		ws := testgw.OpenWS(t, gw, false, "/talker")
		if _, err := ws.Conn.Write(stream); err != nil {
			t.Fatal(err)
		}
	}
	for range tunnels {
		select {
		case <-ended:
		case <-time.After(waitLimit):
			t.Fatal("a client's Close never reached the service")
		}
	}
	start := time.Now()
	gw.Stop(t, time.Millisecond)
	// One linger is a second (lingerTime); four in turn would be four.
	if elapsed := time.Since(start); elapsed > 2500*time.Millisecond {
		t.Fatalf("Shutdown took %v: the tunnels lingered one after the other", elapsed)
	}
}
