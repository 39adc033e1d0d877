package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	gorilla "github.com/gorilla/websocket"
	"github.com/porthole/porthole/internal/netutil"
	"github.com/porthole/porthole/internal/proc"
	"golang.org/x/sys/unix"
)

// The bare WebSocket relays that BenchmarkWSLib* measure, one per candidate
// library: an HTTP server that upgrades GET /echo or GET /sink to a
// WebSocket and relays it to that TCP backend, binary messages one way and
// the backend's bytes as binary messages the other: the shape of porthole's
// WebSocket carrier with nothing of porthole in it. Each runs in a helper
// process of its own (this test binary again, with wsRelayEnv set), so its
// memory and CPU are its own.
//
// Each relay uses its library the way the library's docs recommend for low
// memory per connection:
//
//   - coder: websocket.Accept with nil options (no compression), Reader to
//     read a message as a stream, Write for one message, a context without
//     a Done channel so no timer is armed per call. It keeps net/http's
//     hijacked 4 KiB bufio.Reader and bufio.Writer for the connection's life;
//     it has no option to do otherwise.
//   - gorilla: Upgrader with ReadBufferSize and WriteBufferSize 0 (the
//     connection reads through net/http's own hijacked 4 KiB bufio.Reader)
//     and a WriteBufferPool, so a write buffer is held only while a message
//     is written; NextReader to read a message as a stream, WriteMessage for
//     one message (the server's single-frame path, one writev).
//   - gorilla-rb1k: the same with ReadBufferSize 1 KiB (as
//     carrier/websocket sets it), the one knob that lowers what gorilla
//     holds per idle connection further: a 1 KiB bufio.Reader of its own in
//     place of net/http's 4 KiB one.
//   - gorilla-rb1k-ready: the same, reading on within a message only while
//     more has arrived (a poll(2), as carrier/websocket's relay asked before
//     it handed off instead, see netutil.HandOff), so that it holds back no
//     bytes of a message still open; the others wait for the buffer to
//     fill or the message to end.
//   - gorilla-rb1k-ping: gorilla-rb1k with a keep-alive as the carrier
//     first had it (a ping every 30 seconds from a timer per connection):
//     a pending timer makes the Go runtime's poller wait with a timeout,
//     which costs each wait a kernel timer (see docs/benchmarks.md,
//     "WebSocket round trip").
//   - gobwas: ws.HTTPUpgrader inside net/http (as porthole's gateway, an
//     http.Handler, would have to use it); the hijacked bufio buffers are
//     dropped and frames are read straight from the socket with a
//     wsutil.Reader, control frames answered with wsutil.ControlHandler;
//     each message is written as one frame, header and payload in one writev.
//   - gobwas-raw: the same, but the handshake is gobwas's zero-copy
//     ws.Upgrader on connections from the listener, without net/http: the
//     lowest-memory setup gobwas's README shows, which porthole could use
//     only by taking connections before net/http does.
//
// Everything else is the same code for all of them: the backend is dialed
// before the 101 (as porthole's carriers do), the handshake's goroutine ends
// and the relay runs in two new ones, one per direction (as porthole's
// gateway runs a tunnel), and the TCP side waits for bytes in the
// runtime's poller without a buffer (tcpToMessages), so that an idle relay
// holds what the library holds and no buffer of the relay's own; messages
// go to the backend in one write per 32 KiB (copyMessage). No relay sets a
// deadline once upgraded: a relay lasts as long as its connections, and the
// process ends when the benchmark closes its stdin.

// Environment variables that turn the test binary into a WebSocket relay.
const (
	wsRelayEnv       = "PORTHOLE_BENCH_WSRELAY"        // the library, a wsLib name
	wsRelayRoutesEnv = "PORTHOLE_BENCH_WSRELAY_ROUTES" // PATH=tcp://ADDR,...
)

const (
	wsMsgSize   = 32 << 10 // the client's message size; the relay's read size from TCP
	wsReadLimit = 1 << 20  // the largest message a relay or client accepts
)

// A wsLib is one candidate library: its relay and its client.
type wsLib struct {
	name string
	// serve runs the relay on ln until ln is closed.
	serve func(ln net.Listener, r *wsRelay) error
	// dial opens a WebSocket to url (ws://HOST/PATH) with the library's
	// client, as a net.Conn: each Write is one binary message; Read
	// returns the payloads of the messages received, in order.
	dial func(ctx context.Context, url string) (net.Conn, error)
}

// wsLibs are the candidates, in the order of the table.
var wsLibs = []wsLib{
	{"coder", serveCoder, dialCoder},
	{"gorilla", gorillaRelay{}.serve, dialGorilla},
	{"gorilla-rb1k", gorillaRelay{readBufferSize: 1 << 10}.serve, dialGorilla},
	{"gorilla-rb1k-ready", gorillaRelay{readBufferSize: 1 << 10, ready: true}.serve, dialGorilla},
	{"gorilla-rb1k-ping", gorillaRelay{readBufferSize: 1 << 10, ping: true}.serve, dialGorilla},
	{"gobwas", serveGobwasHTTP, dialGobwas},
	{"gobwas-raw", serveGobwasRaw, dialGobwas},
	// porthole's WebSocket carrier: with gorilla's client, as the gorilla
	// rows, it measures the gateway alone (noping: without its keep-alive,
	// to compare with gorilla-rb1k); with porthole.Dial, the whole of
	// porthole, its client's deadline guard included.
	{"porthole-ws", servePorthole(0), dialGorilla},
	{"porthole-ws-noping", servePorthole(-1), dialGorilla},
	{"porthole-ws-dial", servePorthole(0), dialPorthole},
}

// wsRelay is the relay process's state, shared by the libraries' servers.
type wsRelay struct {
	backends map[string]string // URL path → TCP address
	open     atomic.Int64      // relays running
	tunnels  atomic.Value      // a func() int that counts open tunnels instead of open, if stored
}

// count returns the relays or tunnels open.
func (r *wsRelay) count() int {
	if f, ok := r.tunnels.Load().(func() int); ok {
		return f()
	}
	return int(r.open.Load())
}

// wsRelayMain is the relay process: it serves lib's relay to routes
// ("/echo=tcp://ADDR,...") on the listener at file descriptor 3, answering
// "stats" on stdin, until its stdin closes; the relays still open end with
// the process.
func wsRelayMain(lib, routes string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "bench wsrelay:", err)
		return 1
	}
	var l *wsLib
	for i := range wsLibs {
		if wsLibs[i].name == lib {
			l = &wsLibs[i]
		}
	}
	if l == nil {
		return fail(fmt.Errorf("unknown library %q", lib))
	}
	r := &wsRelay{backends: make(map[string]string)}
	for kv := range strings.SplitSeq(routes, ",") {
		p, target, _ := strings.Cut(kv, "=")
		addr, ok := strings.CutPrefix(target, "tcp://")
		if !ok {
			return fail(fmt.Errorf("route %q: want PATH=tcp://ADDR", kv))
		}
		r.backends[p] = addr
	}
	ln, err := proc.Listener()
	if err != nil {
		return fail(err)
	}
	go func() {
		if err := l.serve(ln, r); err != nil && !errors.Is(err, net.ErrClosed) {
			fmt.Fprintf(os.Stderr, "bench wsrelay %s: %v\n", lib, err)
		}
	}()
	err = proc.AnswerStats(r.count, "")
	ln.Close()
	if err != nil {
		return fail(err)
	}
	return 0
}

var errNoRoute = errors.New("no such route")

// dialBackend dials the TCP backend of a request path.
func (r *wsRelay) dialBackend(path string) (*net.TCPConn, error) {
	addr, ok := r.backends[path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, errNoRoute)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// start relays one upgraded WebSocket and its backend in two goroutines of
// its own and returns at once, so that the handshake's goroutine ends, and
// with it net/http's state for the request (porthole's gateway runs its
// tunnels the same way): fromWS copies the WebSocket's messages, as bytes,
// to tcp; toWS sends tcp's bytes as messages. When either ends, both
// connections are closed: closeWS closes the WebSocket's connection and
// must be harmless when called twice. The relays' errors are not reported:
// a client that goes away is how every tunnel of the benchmarks ends.
func (r *wsRelay) start(tcp *net.TCPConn, fromWS, toWS func() error, closeWS func()) {
	r.open.Add(1)
	go func() {
		defer r.open.Add(-1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			toWS()
			closeWS()
			tcp.Close()
		}()
		fromWS()
		tcp.Close()
		closeWS()
		<-done
	}()
}

// relayBufs holds the buffers the relays copy through, wsMsgSize each.
var relayBufs = sync.Pool{New: func() any {
	b := make([]byte, wsMsgSize)
	return &b
}}

// tcpToMessages reads tcp and hands each read to send, to be written as one
// message, until tcp's EOF (it returns nil) or an error. While tcp is idle it
// holds no buffer: it parks in the runtime's poller until bytes or the EOF
// are queued (a MSG_PEEK, as porthole's internal/relay waits), and only then
// takes a buffer from relayBufs.
func tcpToMessages(tcp *net.TCPConn, send func([]byte) error) error {
	rc, err := tcp.SyscallConn()
	if err != nil {
		return err
	}
	for {
		if err := waitReadable(rc); err != nil {
			return err
		}
		bp := relayBufs.Get().(*[]byte)
		n, err := tcp.Read(*bp)
		if n > 0 {
			if werr := send((*bp)[:n]); werr != nil {
				relayBufs.Put(bp)
				return werr
			}
		}
		relayBufs.Put(bp)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// waitReadable parks until the socket has bytes to read, its EOF, or an
// error; the Read that follows reports which.
func waitReadable(rc syscall.RawConn) error {
	return rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return !errors.Is(err, unix.EAGAIN)
	})
}

// copyMessage copies one message's payload, r, to tcp through a buffer
// from relayBufs. It fills the buffer, or reads to the message's end,
// before each write: a library that reads through a bufio.Reader returns
// first what its buffer holds and then reads the rest, and writing each of
// those reads costs the relay a second write per message (a quarter more
// CPU per GiB for gorilla, measured). It does not use io.ReadFull, which
// drops the io.EOF that comes with a message's last bytes; gobwas's reader
// fails when it is read again after that. With arrived set, it reads on
// into a buffer holding bytes only while arrived reports more.
func copyMessage(tcp *net.TCPConn, r io.Reader, arrived func() bool) error {
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	buf := *bp
	for {
		n := 0
		var err error
		for n < len(buf) && err == nil && (n == 0 || arrived == nil || arrived()) {
			var m int
			m, err = r.Read(buf[n:])
			n += m
			if m == 0 {
				break // a control frame between fragments, say: write what there is
			}
		}
		if n > 0 {
			if _, werr := tcp.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// serveHTTP serves h on ln with a plain net/http server.
func serveHTTP(ln net.Listener, h http.HandlerFunc) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: dialTimeout}
	return srv.Serve(ln)
}

// serveCoder is the relay on github.com/coder/websocket.
func serveCoder(ln net.Listener, r *wsRelay) error {
	return serveHTTP(ln, func(w http.ResponseWriter, req *http.Request) {
		tcp, err := r.dialBackend(req.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, err := coder.Accept(w, req, nil)
		if err != nil {
			tcp.Close()
			return
		}
		c.SetReadLimit(wsReadLimit)
		ctx := context.Background() // no Done channel: nothing is armed per read or write
		r.start(tcp,
			func() error {
				for {
					_, msg, err := c.Reader(ctx)
					if err != nil {
						return err
					}
					if err := copyMessage(tcp, msg, nil); err != nil {
						return err
					}
				}
			},
			func() error {
				err := tcpToMessages(tcp, func(p []byte) error {
					return c.Write(ctx, coder.MessageBinary, p)
				})
				if err == nil {
					return c.Close(coder.StatusNormalClosure, "")
				}
				return err
			},
			func() { c.CloseNow() })
	})
}

// gorillaRelay is the relay on github.com/gorilla/websocket.
type gorillaRelay struct {
	readBufferSize int  // the Upgrader's ReadBufferSize
	ready          bool // within a message, read on only while more has arrived
	ping           bool // ping each connection every wsPingInterval from a timer of its own
}

// wsPingInterval is how often the relays with a keep-alive ping: the
// carrier's default.
const wsPingInterval = 30 * time.Second

func (g gorillaRelay) serve(ln net.Listener, r *wsRelay) error {
	up := gorilla.Upgrader{
		// ReadBufferSize 0: read through net/http's hijacked 4 KiB
		// bufio.Reader; otherwise through a bufio.Reader of that size.
		// WriteBufferSize 0 with the pool: a write buffer (4 KiB, the
		// default size) is held only while a message is written.
		ReadBufferSize:  g.readBufferSize,
		WriteBufferPool: &sync.Pool{},
	}
	return serveHTTP(ln, func(w http.ResponseWriter, req *http.Request) {
		tcp, err := r.dialBackend(req.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, err := up.Upgrade(w, req, nil)
		if err != nil {
			tcp.Close()
			return
		}
		c.SetReadLimit(wsReadLimit)
		var arrived func() bool
		if g.ready {
			readiness := netutil.NewReadiness(c.NetConn())
			arrived = func() bool {
				readable, ok := readiness.Readable()
				return readable || !ok
			}
		}
		stopPings := func() {}
		if g.ping {
			// Armed only once assigned: the callback resets it.
			var keepalive *time.Timer
			keepalive = time.AfterFunc(time.Hour, func() {
				if c.WriteControl(gorilla.PingMessage, nil, time.Now().Add(wsPingInterval)) == nil {
					keepalive.Reset(wsPingInterval)
				}
			})
			keepalive.Reset(wsPingInterval)
			stopPings = func() { keepalive.Stop() }
		}
		r.start(tcp,
			func() error {
				for {
					_, msg, err := c.NextReader()
					if err != nil {
						return err
					}
					if err := copyMessage(tcp, msg, arrived); err != nil {
						return err
					}
				}
			},
			func() error {
				err := tcpToMessages(tcp, func(p []byte) error {
					return c.WriteMessage(gorilla.BinaryMessage, p)
				})
				if err == nil {
					msg := gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, "")
					return c.WriteControl(gorilla.CloseMessage, msg, time.Now().Add(time.Second))
				}
				return err
			},
			func() {
				stopPings()
				c.Close()
			})
	})
}

// serveGobwasHTTP is the relay on github.com/gobwas/ws behind net/http.
func serveGobwasHTTP(ln net.Listener, r *wsRelay) error {
	var up ws.HTTPUpgrader
	return serveHTTP(ln, func(w http.ResponseWriter, req *http.Request) {
		tcp, err := r.dialBackend(req.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, rw, _, err := up.Upgrade(req, w)
		if err != nil {
			tcp.Close()
			if conn != nil {
				conn.Close()
			}
			return
		}
		// A client waits for the 101 before it sends a frame (RFC 6455
		// section 4.1), so net/http has normally read nothing past the
		// request: then its buffers are dropped and frames are read from
		// the socket itself.
		src := io.Reader(conn)
		if rw.Reader.Buffered() > 0 {
			src = rw.Reader
		}
		r.gobwas(tcp, conn, src)
	})
}

// serveGobwasRaw is the relay on github.com/gobwas/ws without net/http:
// ws.Upgrader reads the request from the connection itself.
func serveGobwasRaw(ln net.Listener, r *wsRelay) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			var (
				path string
				tcp  *net.TCPConn
			)
			up := ws.Upgrader{
				OnRequest: func(uri []byte) error {
					path, _, _ = strings.Cut(string(uri), "?")
					if _, ok := r.backends[path]; !ok {
						return ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound))
					}
					return nil
				},
				OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
					c, err := r.dialBackend(path)
					if err != nil {
						return nil, ws.RejectConnectionError(
							ws.RejectionStatus(http.StatusBadGateway), ws.RejectionReason(err.Error()))
					}
					tcp = c
					return ws.HandshakeHeaderString(""), nil
				},
			}
			conn.SetDeadline(time.Now().Add(dialTimeout))
			_, err := up.Upgrade(conn)
			conn.SetDeadline(time.Time{})
			if err != nil {
				conn.Close()
				if tcp != nil {
					tcp.Close()
				}
				return
			}
			r.gobwas(tcp, conn, conn)
		}()
	}
}

// gobwas relays an upgraded gobwas connection, reading its frames from src
// (conn, or a reader holding bytes read ahead).
func (r *wsRelay) gobwas(tcp *net.TCPConn, conn net.Conn, src io.Reader) {
	var wmu sync.Mutex // one frame written at a time: messages, answers to control frames
	write := func(p ...[]byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		bufs := net.Buffers(p)
		_, err := bufs.WriteTo(conn)
		return err
	}
	// control answers a ping or a close (wsutil.ControlHandler checks the
	// close code and echoes it) in one write; a Close ends the relay with a
	// wsutil.ClosedError.
	control := func(h ws.Header, body io.Reader) error {
		var out bytes.Buffer
		err := wsutil.ControlHandler{
			Src: body, Dst: &out, State: ws.StateServerSide, DisableSrcCiphering: true,
		}.Handle(h)
		if out.Len() > 0 {
			if werr := write(out.Bytes()); werr != nil && err == nil {
				err = werr
			}
		}
		return err
	}
	rd := &wsutil.Reader{
		Source:         src,
		State:          ws.StateServerSide,
		MaxMessageSize: wsReadLimit,
		OnIntermediate: control,
	}
	r.start(tcp,
		func() error {
			for {
				h, err := rd.NextFrame()
				if err != nil {
					return err
				}
				if h.OpCode.IsControl() {
					if err := control(h, rd); err != nil {
						return err
					}
					continue
				}
				if err := copyMessage(tcp, rd, nil); err != nil {
					return err
				}
			}
		},
		func() error {
			var (
				hdr     bytes.Buffer
				scratch [ws.MaxHeaderSize]byte
			)
			err := tcpToMessages(tcp, func(p []byte) error {
				hdr.Reset()
				h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(len(p))}
				ws.WriteHeaderBuffer(&hdr, h, scratch[:])
				return write(hdr.Bytes(), p)
			})
			if err == nil {
				var f bytes.Buffer
				ws.WriteFrame(&f, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))
				return write(f.Bytes())
			}
			return err
		},
		func() { conn.Close() })
}
