package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// dialEcho opens a tunnel to url's /echo and checks it echoes.
func dialEcho(t *testing.T, url string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	conn, err := porthole.Dial(ctx, url+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(waitLimit))
	echo(t, conn, "ping")
	return conn
}

// echo writes msg and reads it back.
func echo(t *testing.T, conn net.Conn, msg string) {
	t.Helper()
	write(t, conn, msg)
	readExactly(t, conn, msg)
}

// awaitRefusal dials url until the gateway refuses new tunnels, within
// waitLimit: with 503, or (refusedOK) with the connection refused once its
// listener is closed. A dial that got through before Shutdown began is
// closed and retried.
func awaitRefusal(t *testing.T, url string, refusedOK bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	for ctx.Err() == nil {
		conn, err := porthole.Dial(ctx, url+"/echo", nil)
		var se *porthole.StatusError
		switch {
		case err == nil:
			conn.Close()
		case errors.As(err, &se) && se.Code == http.StatusServiceUnavailable,
			refusedOK && errors.Is(err, syscall.ECONNREFUSED):
			t.Logf("a new tunnel during shutdown: %v", err)
			return
		case refusedOK && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)):
			// A connection accepted as Shutdown began: the listener
			// closed under it, or net/http dropped its request unanswered.
		default:
			t.Fatalf("a new tunnel during shutdown: %v, want 503 or connection refused", err)
		}
	}
	t.Fatal("new tunnels were still accepted during shutdown")
}

// TestShutdownDrains checks that Shutdown refuses new tunnels but waits for
// the open one, which keeps working, and returns nil once it is closed;
// for the gateway's own listeners, and for a gateway mounted as a handler
// on another server, whose listener stays open so refusals are 503s.
func TestShutdownDrains(t *testing.T) {
	t.Run("Serve", func(t *testing.T) {
		gw := start(t, gateway.Options{})
		checkDrain(t, gw.Gateway, gw.URL, true, func() error { return gw.Stop(t, waitLimit) })
	})
	t.Run("Mounted", func(t *testing.T) {
		gw, err := gateway.New(&gateway.Options{
			Routes: []gateway.Route{{Path: "/echo", Service: service.Echo{}}},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(gw)
		t.Cleanup(srv.Close)
		checkDrain(t, gw, srv.URL, false, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			return gw.Shutdown(ctx)
		})
	})
}

func checkDrain(t *testing.T, gw *gateway.Gateway, url string, refusedOK bool, shutdown func() error) {
	tun := dialEcho(t, url)
	if !gw.Ready() {
		t.Error("Ready = false before Shutdown")
	}
	stopped := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		stopped <- shutdown()
	}()
	defer func() { // on failure too: Shutdown ends once the tunnel is closed
		tun.Close()
		<-finished
	}()

	awaitRefusal(t, url, refusedOK)
	echo(t, tun, "still open while draining")
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned %v while a tunnel was open", err)
	default:
	}
	if n := gw.OpenTunnels(); n != 1 {
		t.Errorf("OpenTunnels = %d while draining, want 1", n)
	}
	if gw.Ready() {
		t.Error("Ready = true while draining")
	}
	tun.Close()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Shutdown after the last tunnel closed: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Shutdown did not return after the last tunnel closed")
	}
}

// TestShutdownDeadline checks that Shutdown closes a tunnel still open at
// its deadline and returns the context's error.
func TestShutdownDeadline(t *testing.T) {
	const deadline = 200 * time.Millisecond
	gw := start(t, gateway.Options{})
	tun := dialEcho(t, gw.URL)
	start := time.Now()
	err := gw.Stop(t, deadline)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed < deadline {
		t.Errorf("Shutdown returned after %v, before its deadline of %v", elapsed, deadline)
	}
	n, err := tun.Read(make([]byte, 1))
	if n != 0 || errors.Is(err, os.ErrDeadlineExceeded) || (err != io.EOF && !isReset(err)) {
		t.Fatalf("the tunnel read %d, %v after Shutdown; want EOF (closed by the gateway)", n, err)
	}
	if n := gw.OpenTunnels(); n != 0 {
		t.Errorf("OpenTunnels = %d after Shutdown, want 0", n)
	}
}
