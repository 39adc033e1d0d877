package service_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

const waitLimit = 10 * time.Second

// TestTCPOpenUnreachable checks that a dead backend's error names the
// target and the dial's reason.
func TestTCPOpenUnreachable(t *testing.T) {
	addr := testgw.DeadAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	be, err := (&service.TCP{Addr: addr}).Open(ctx)
	if err == nil {
		be.Close()
		t.Fatal("Open of a dead address succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "tcp://"+addr) {
		t.Fatalf("Open: %q, want an error naming tcp://%s and wrapping ECONNREFUSED", err, addr)
	}
}

// pair returns the two ends of a loopback TCP connection, closed when the
// test ends.
func pair(t *testing.T) (client, server net.Conn) {
	ln := testgw.Listen(t)
	client, err := net.DialTimeout("tcp", ln.Addr().String(), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{client, server} {
		c.SetDeadline(time.Now().Add(waitLimit))
		t.Cleanup(func() { c.Close() })
	}
	return client, server
}

// TestServe runs each service's backend on one end of a socket pair and
// checks, from the other end, that what is sent comes back, that a
// half-close reaches the service as EOF while the reply still arrives, and
// the byte counts.
func TestServe(t *testing.T) {
	for _, svc := range []service.Service{service.Echo{}, &service.TCP{Addr: testgw.EchoServer(t)}} {
		t.Run(svc.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
			defer cancel()
			be, err := svc.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			client, tun := pair(t)
			type result struct {
				st  service.Stats
				err error
			}
			served := make(chan result, 1)
			go func() {
				st, err := be.Serve(tun)
				served <- result{st, err}
			}()
			const msg = "through the service and back"
			io.WriteString(client, msg)
			client.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(client)
			if err != nil || string(got) != msg {
				t.Fatalf("read %q, %v; want %q then EOF", got, err, msg)
			}
			r := <-served
			if r.err != nil || r.st != (service.Stats{In: int64(len(msg)), Out: int64(len(msg))}) {
				t.Fatalf("Serve = %+v, %v; want %d bytes each way and no error", r.st, r.err, len(msg))
			}
		})
	}
}
