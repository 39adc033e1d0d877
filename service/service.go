// Package service holds what tunnels reach: the built-in echo and chat, TCP
// backends, and in-process Go handlers.
//
// The gateway opens a service for each tunnel before it answers the
// client's handshake, so a service that cannot be reached is reported as an
// HTTP error while the client can still read one.
package service

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// A Service is what a route's tunnels reach.
type Service interface {
	// Open readies the service for one tunnel. ctx bounds only the opening
	// (a TCP dial, say), never the tunnel's life. An error means the tunnel
	// is refused; its text is shown to the client.
	Open(ctx context.Context) (Backend, error)
	// String names the service as a route target, such as "echo" or
	// "tcp://127.0.0.1:22".
	String() string
}

// A Backend is the service's end of one tunnel.
type Backend interface {
	// Serve carries the tunnel tun until both directions are done, then
	// closes tun and the backend. It reports the bytes that went in each
	// direction and why the tunnel ended (nil for a clean end on both sides).
	Serve(tun net.Conn) (Stats, error)
	// Close releases a backend whose tunnel never started, for instance
	// because the client's handshake failed after Open.
	Close() error
}

// Stats counts a tunnel's bytes as seen from the gateway.
type Stats struct {
	In  int64 // bytes from the client to the service
	Out int64 // bytes from the service to the client
}

// Parse returns the service a route target names: "echo", "chat" (a new
// room each call) or "tcp://host:port".
func Parse(target string) (Service, error) {
	switch target {
	case "echo":
		return Echo{}, nil
	case "chat":
		return &Chat{}, nil
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "tcp" {
		return nil, fmt.Errorf("unknown service %q: use echo, chat or tcp://host:port", target)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("service %q: a tcp target is only tcp://host:port", target)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" || strings.ContainsAny(port, "/") {
		return nil, fmt.Errorf("service %q: a tcp target needs a host and a port, as in tcp://127.0.0.1:22", target)
	}
	if n, err := strconv.Atoi(port); err == nil && (n < 1 || n > 65535) {
		return nil, fmt.Errorf("service %q: port %d is not a port; use 1 to 65535", target, n)
	}
	return &TCP{Addr: u.Host}, nil
}
