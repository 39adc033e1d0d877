package porthole

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// Listener is a net.Listener whose connections arrive as tunnels through an
// http.Handler: mount it on any mux, and Accept returns each tunnel a
// client opens with Dial to that path. It lets a Go server accept tunnels
// in-process, beside its other handlers.
type Listener struct {
	tunnel http.Handler
	conns  chan net.Conn
	done   chan struct{}
	closer sync.Once
	wait   time.Duration // how long a tunnel waits for Accept
}

// ListenerOptions configure a Listener. A nil *ListenerOptions means the
// defaults.
type ListenerOptions struct {
	// HandshakeTimeout bounds a tunnel's handshake and the wait for Accept
	// to take it. Zero means 10 seconds.
	HandshakeTimeout time.Duration
	// Bare accepts the bare form "GET /path HTTP/1.0" with no Upgrade.
	Bare bool
}

// NewListener returns a Listener ready to be mounted as an http.Handler.
func NewListener(opts *ListenerOptions) *Listener {
	var o ListenerOptions
	if opts != nil {
		o = *opts
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	l := &Listener{conns: make(chan net.Conn), done: make(chan struct{}), wait: o.HandshakeTimeout}
	// Refusals are answered to the client; the Listener itself logs nothing.
	gw, err := gateway.New(&gateway.Options{
		HandshakeTimeout: o.HandshakeTimeout,
		Logger:           slog.New(slog.DiscardHandler),
	})
	if err == nil {
		l.tunnel, err = gw.Handler(gateway.Route{Path: "/listener", Service: service.Handler(l.handOff), Bare: o.Bare})
	}
	if err != nil {
		panic("porthole: the listener's fixed gateway options are invalid: " + err.Error())
	}
	return l
}

// ServeHTTP takes a tunnel handshake on any path and queues the tunnel for
// Accept. After Close it answers 503.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-l.done:
		carrier.Errorf(http.StatusServiceUnavailable, "listener is closed").Write(w)
	default:
		l.tunnel.ServeHTTP(w, r)
	}
}

// handOff gives tun to Accept, or closes it when no Accept takes it in time.
func (l *Listener) handOff(tun net.Conn) {
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.conns <- tun:
	case <-l.done:
		tun.Close()
	case <-t.C:
		tun.Close()
	}
}

// Accept waits for the next tunnel. The caller owns the connection and
// closes it. After Close, Accept returns an error wrapping net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "porthole", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting tunnels. Tunnels already accepted stay open; those
// not yet accepted are closed.
func (l *Listener) Close() error {
	l.closer.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address: a Listener has no socket of its own.
func (l *Listener) Addr() net.Addr { return listenerAddr{} }

type listenerAddr struct{}

func (listenerAddr) Network() string { return "porthole" }
func (listenerAddr) String() string  { return "porthole-listener" }
