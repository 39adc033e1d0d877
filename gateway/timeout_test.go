package gateway_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/gateway"
)

// TestHeaderTrickleCut trickles a request's header one byte at a time,
// never finishing it. The gateway must close the connection at its
// ReadHeaderTimeout: not at once, and not never.
func TestHeaderTrickleCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	gw := start(t, gateway.Options{ReadHeaderTimeout: timeout})
	forBoth(t, func(t *testing.T, useTLS bool) {
		// The header's deadline starts after the dial began and about when
		// connect returns (for TLS, after the handshake): bound the cut's
		// time from both, so a test descheduled in between does not fail.
		dialed := time.Now()
		conn := connect(t, gw, useTLS) // the TLS handshake is done, in time
		start := time.Now()
		closed := make(chan error, 1)
		go func() {
			buf := make([]byte, 512)
			n, err := conn.Read(buf)
			if n > 0 {
				err = fmt.Errorf("the gateway answered a request whose header never ended: %q", buf[:n])
			}
			closed <- err
		}()
		// The request line goes whole: net/http answers 400 to a request
		// line cut short, and the subject here is the header.
		write(t, conn, "GET /echo HTTP/1.1\r\n")
		head := "Host: gateway.test\r\nX-Slow: " + strings.Repeat("a", 10_000)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case err := <-closed:
				elapsed, sinceDial := time.Since(start), time.Since(dialed)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("the gateway still had the connection open after %v (%d bytes trickled)", elapsed, i)
				}
				if err != io.EOF && !isReset(err) {
					t.Fatalf("read %v, want EOF or a reset from the gateway closing", err)
				}
				if sinceDial < timeout*2/3 || elapsed > timeout+2*time.Second {
					t.Fatalf("the gateway closed the connection %v after connect returned (%v after the dial began), want about %v", elapsed, sinceDial, timeout)
				}
				t.Logf("cut after %v and %d bytes", elapsed.Round(time.Millisecond), i)
				return
			case <-tick.C:
				if i < len(head) {
					conn.Write([]byte{head[i]}) // an error here shows as the read's
				}
			}
		}
	})
}
