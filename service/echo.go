package service

import (
	"context"
	"net"

	"github.com/porthole/porthole/internal/relay"
)

// Echo is the built-in service that sends every byte back to the client.
// When the client half-closes, Echo finishes sending what it received and
// then half-closes too.
type Echo struct{}

// Open returns the echo backend; it cannot fail.
func (Echo) Open(context.Context) (Backend, error) { return echoBackend{}, nil }

// String returns "echo".
func (Echo) String() string { return "echo" }

type echoBackend struct{}

func (echoBackend) Serve(tun net.Conn) (Stats, error) {
	n, err := relay.Loop(tun)
	return Stats{In: n, Out: n}, err
}

func (echoBackend) Close() error { return nil }
