package service

import (
	"context"
	"fmt"
	"net"

	"github.com/porthole/porthole/internal/relay"
)

// TCP is a service reached by dialing a TCP address for each tunnel.
type TCP struct {
	// Addr is the backend's host:port.
	Addr string
	// Dialer dials the backend; nil means a zero net.Dialer.
	Dialer *net.Dialer
}

// Open dials the backend. The error names the address and the reason.
func (t *TCP) Open(ctx context.Context) (Backend, error) {
	d := t.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	c, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("service tcp://%s is unreachable: %w", t.Addr, err)
	}
	return tcpBackend{c}, nil
}

// String returns the target form, tcp://host:port.
func (t *TCP) String() string { return "tcp://" + t.Addr }

type tcpBackend struct{ net.Conn }

func (b tcpBackend) Serve(tun net.Conn) (Stats, error) {
	s, err := relay.Pipe(tun, b.Conn)
	return Stats{In: s.AToB, Out: s.BToA}, err
}
