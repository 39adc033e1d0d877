package interop_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/internal/testgw"
)

// TestGorillaClient: gorilla/websocket's client streams 16 MiB through
// the gateway's echo over ws:// and wss://, offering compression (which
// the gateway declines), closes with 1000 once all is sent, and reads
// the whole echo and then the gateway's Close 1000.
func TestGorillaClient(t *testing.T) {
	gw := startEcho(t)
	ws, wss, _ := wsURLs(t, gw)
	roots := x509.NewCertPool()
	roots.AddCert(gw.Cert.Leaf)
	for _, tc := range []struct{ name, url string }{{"ws", ws}, {"wss", wss}} {
		t.Run(tc.name, func(t *testing.T) {
			d := websocket.Dialer{
				Subprotocols:      []string{"binary"},
				EnableCompression: true,
				TLSClientConfig:   &tls.Config{RootCAs: roots},
				HandshakeTimeout:  testgw.WaitLimit,
			}
			c, resp, err := d.Dial(tc.url, nil)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if c.Subprotocol() != "binary" || resp.Header.Get("Sec-WebSocket-Extensions") != "" {
				t.Errorf("subprotocol %q, extensions %q; want binary and none", c.Subprotocol(), resp.Header.Get("Sec-WebSocket-Extensions"))
			}
			c.SetReadDeadline(time.Now().Add(peerLimit))
			sent := sha256.New()
			wrote := make(chan error, 1)
			go func() {
				buf := make([]byte, 64<<10)
				for n := 0; n < streamBytes; n += len(buf) {
					rand.Read(buf)
					sent.Write(buf)
					if err := c.WriteMessage(websocket.BinaryMessage, buf); err != nil {
						wrote <- err
						return
					}
				}
				wrote <- c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "sent everything"))
			}()
			got := sha256.New()
			var received int64
			var end error
			for {
				typ, r, err := c.NextReader()
				if err != nil {
					end = err
					break
				}
				if typ != websocket.BinaryMessage {
					t.Fatalf("the gateway sent message type %d, want binary", typ)
				}
				n, err := io.Copy(got, r)
				received += n
				if err != nil {
					end = err
					break
				}
			}
			if err := <-wrote; err != nil {
				t.Fatalf("sending: %v", err)
			}
			if !websocket.IsCloseError(end, 1000) {
				t.Errorf("reading ended with %v, want the gateway's Close 1000", end)
			}
			if received != streamBytes || string(got.Sum(nil)) != string(sent.Sum(nil)) {
				t.Errorf("received %d bytes back, want the %d sent, same SHA-256", received, streamBytes)
			}
		})
	}
}

// gorillaServer is a bare WebSocket server written on gorilla/websocket:
// at /echo it echoes binary messages; at /close-CODE it sends "bye" and
// closes with CODE. Each request it got is passed to seen.
func gorillaServer(t *testing.T, useTLS bool, seen func(*http.Request, *websocket.Conn)) (url string, d *porthole.Dialer) {
	t.Helper()
	var wg sync.WaitGroup
	up := websocket.Upgrader{Subprotocols: []string{"binary"}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // before srv.Close returns: it waits for handlers until they hijack
		defer wg.Done()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(peerLimit))
		seen(r, c)
		if code, ok := strings.CutPrefix(r.URL.Path, "/close-"); ok {
			c.WriteMessage(websocket.BinaryMessage, []byte("bye"))
			n := map[string]int{"1000": 1000, "1001": 1001, "1011": 1011, "4000": 4000}[code]
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(n, "server says "+code))
			// Read until the client's answering Close (or its end).
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return // gorilla answered a Close already
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	})
	t.Cleanup(wg.Wait) // after the server's close, which waits for handlers until they hijack
	srv, cfg := testgw.HTTPServer(t, handler, useTLS)
	d = &porthole.Dialer{TLSConfig: cfg}
	return "ws" + strings.TrimPrefix(srv.URL, "http"), d
}

// TestDialGorillaServer: porthole.Dial's WebSocket client against a bare
// gorilla server, ws:// and wss://: it asks for "binary" and says it is a
// porthole client, streams 16 MiB through the echo, half-closes and reads
// the whole echo then EOF.
func TestDialGorillaServer(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "ws", true: "wss"}[useTLS]
		t.Run(name, func(t *testing.T) {
			reqs := make(chan string, 1)
			url, d := gorillaServer(t, useTLS, func(r *http.Request, c *websocket.Conn) {
				reqs <- "subprotocol=" + c.Subprotocol() + " porthole-version=" + r.Header.Get("Porthole-Version")
			})
			ctx, cancel := context.WithTimeout(context.Background(), testgw.WaitLimit)
			defer cancel()
			conn, err := porthole.Dial(ctx, url+"/echo", d)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			if got, want := <-reqs, "subprotocol=binary porthole-version=1"; got != want {
				t.Errorf("the server saw %s, want %s", got, want)
			}
			conn.SetDeadline(time.Now().Add(peerLimit))
			sent := sha256.New()
			wrote := make(chan error, 1)
			go func() {
				buf := make([]byte, 48<<10+5)
				for n := 0; n < streamBytes; {
					m := min(len(buf), streamBytes-n)
					rand.Read(buf[:m])
					sent.Write(buf[:m])
					if _, err := conn.Write(buf[:m]); err != nil {
						wrote <- err
						return
					}
					n += m
				}
				wrote <- conn.(interface{ CloseWrite() error }).CloseWrite()
			}()
			got := sha256.New()
			n, err := io.Copy(got, conn)
			if werr := <-wrote; werr != nil {
				t.Fatalf("writing and CloseWrite: %v", werr)
			}
			if err != nil || n != streamBytes || string(got.Sum(nil)) != string(sent.Sum(nil)) {
				t.Fatalf("read %d bytes then %v; want the %d sent, same SHA-256, then EOF", n, err, streamBytes)
			}
		})
	}
}

// TestDialGorillaServerCloses: a server's Close with a normal code ends
// the client's stream with EOF after its bytes; another code ends it with
// an error naming the code.
func TestDialGorillaServerCloses(t *testing.T) {
	url, d := gorillaServer(t, false, func(*http.Request, *websocket.Conn) {})
	for _, tc := range []struct {
		code string
		eof  bool
	}{{"1000", true}, {"1001", true}, {"1011", false}, {"4000", false}} {
		t.Run(tc.code, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testgw.WaitLimit)
			defer cancel()
			conn, err := porthole.Dial(ctx, url+"/close-"+tc.code, d)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(testgw.WaitLimit))
			got, err := io.ReadAll(conn)
			if string(got) != "bye" {
				t.Errorf("read %q before the Close, want %q", got, "bye")
			}
			switch {
			case tc.eof && err != nil:
				t.Errorf("Close %s ended the stream with %v, want EOF", tc.code, err)
			case !tc.eof && (err == nil || !strings.Contains(err.Error(), tc.code)):
				t.Errorf("Close %s ended the stream with %v, want an error naming %s", tc.code, err, tc.code)
			case !tc.eof && isTimeout(err):
				t.Errorf("Close %s: %v", tc.code, err)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
