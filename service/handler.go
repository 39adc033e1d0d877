package service

import (
	"context"
	"net"

	"github.com/porthole/porthole/internal/netutil"
)

// Handler is a service run in-process: each tunnel is handed to the
// function, which owns it and must close it.
type Handler func(tun net.Conn)

// Open returns a backend that runs the handler; it cannot fail.
func (h Handler) Open(context.Context) (Backend, error) { return handlerBackend(h), nil }

// String returns "handler".
func (Handler) String() string { return "handler" }

type handlerBackend func(net.Conn)

// Serve runs the handler on tun, made safe for write deadlines (a handler
// may set them as on any net.Conn). Byte counts are unknown to the gateway.
func (h handlerBackend) Serve(tun net.Conn) (Stats, error) {
	h(netutil.SafeDeadlines(tun))
	return Stats{}, nil
}

func (handlerBackend) Close() error { return nil }
