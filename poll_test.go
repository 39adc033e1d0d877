package porthole_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/faulty"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/internal/tlsutil"
	"github.com/porthole/porthole/service"
)

// TestPollServiceReset: a service that resets ends a poll client's
// stream with an error naming the reset, after every byte it sent (the
// gateway's 502 with Porthole-Error, after the bytes).
func TestPollServiceReset(t *testing.T) {
	payload := make([]byte, 1000)
	rand.Read(payload)
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/reset", Service: &service.TCP{Addr: testgw.TCPServer(t, func(c net.Conn) {
			// Reset once the client has the bytes: a reset that overtakes
			// them would drop them from the gateway's socket.
			c.Write(payload)
			c.Read(make([]byte, 1))
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		})}},
	}})
	for _, url := range []string{gw.URL, gw.TLSURL} {
		t.Run(url[:strings.Index(url, ":")], func(t *testing.T) {
			conn := mustDial(t, url+"/reset", &porthole.Dialer{Carrier: porthole.Poll, Fingerprint: gw.Pin}, waitLimit)
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("ReadFull = %v; want the %d bytes sent", err, len(payload))
			}
			conn.Write([]byte("x"))
			rest, err := io.ReadAll(conn)
			if err == nil || len(rest) > 0 || !strings.Contains(err.Error(), "reset") {
				t.Fatalf("ReadAll after the reset = %d bytes, %v; want none, then an error naming the reset", len(rest), err)
			}
		})
	}
}

// TestPollRefusals: Dial over the poll carrier reports the gateway's
// refusal as a *StatusError.
func TestPollRefusals(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	d := &porthole.Dialer{Carrier: "poll"}
	for _, rc := range []struct {
		name, path, reason string
		code               int
	}{
		{"UnknownPath", "/nope", "no route /nope", 404},
		{"DeadBackend", "/dead", "connection refused", 502},
	} {
		t.Run(rc.name, func(t *testing.T) {
			conn, err := porthole.Dial(dialContext(t), gw.URL+rc.path, d)
			expectRefusal(t, conn, err, rc.code, rc.reason)
		})
	}
}

// TestTLSOverPoll runs TLS end to end inside a poll tunnel, as the httpsock
// example does: a tls.Client on the dialed connection, a tls.Server on the
// accepted one, 1 MiB each way.
func TestTLSOverPoll(t *testing.T) {
	l, url, d := listenerServer(t, false)
	d.Carrier = "poll"
	cert, err := tlsutil.SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	acc := acceptAsync(l)
	dialed := mustDial(t, url, d, waitLimit)
	got, err := awaitAccept(t, acc)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()

	payload := make([]byte, 1<<20)
	rand.Read(payload)
	srv := tls.Server(got, &tls.Config{Certificates: []tls.Certificate{cert}})
	served := make(chan error, 1)
	go func() {
		_, err := io.CopyN(srv, srv, int64(len(payload)))
		served <- err
	}()
	cli := tls.Client(dialed, &tls.Config{ServerName: "127.0.0.1", RootCAs: roots})
	go cli.Write(payload)
	echo := make([]byte, len(payload))
	if _, err := io.ReadFull(cli, echo); err != nil {
		t.Fatalf("reading the echo through TLS over poll: %v", err)
	}
	if !bytes.Equal(echo, payload) {
		t.Fatal("the echo through TLS over poll differs from what was sent")
	}
	if err := <-served; err != nil {
		t.Fatalf("the TLS server's echo: %v", err)
	}
	if v := cli.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x inside the tunnel", v)
	}
}

// TestPollLossless runs 16 MiB each way through a proxy that loses
// requests and answers at random: every byte arrives once, in order.
func TestPollLossless(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	for _, mode := range []struct {
		name  string
		error bool
	}{{"cut", false}, {"502", true}} {
		t.Run(mode.name, func(t *testing.T) {
			fp := faulty.Start(t, strings.TrimPrefix(gw.URL, "http://"), faulty.Options{
				DropRequest:  0.1,
				DropResponse: 0.1,
				Error:        mode.error,
			})
			conn := mustDial(t, fp.URL()+"/echo", &porthole.Dialer{Carrier: "poll"}, 2*waitLimit)
			payload := make([]byte, 16<<20)
			rand.Read(payload)
			got := sendThenCloseWrite(t, conn, payload)
			if sha256.Sum256(got) != sha256.Sum256(payload) {
				t.Fatalf("received %d bytes whose SHA-256 differs from the %d sent", len(got), len(payload))
			}
			c := fp.Counts()
			if c.DroppedRequests == 0 || c.DroppedResponses == 0 {
				t.Fatalf("the proxy lost %d requests and %d answers of %d: the test proved nothing", c.DroppedRequests, c.DroppedResponses, c.Requests)
			}
			t.Logf("%d requests, %d lost, %d answers lost", c.Requests, c.DroppedRequests, c.DroppedResponses)
		})
	}
}

// TestPollOpenRetried: opens whose requests or answers are lost are
// retried, and a retried open whose first answer was lost gets the same
// session: 20 dials through a proxy that loses half of the opens' answers
// make 20 sessions, not more.
func TestPollOpenRetried(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	fp := faulty.Start(t, strings.TrimPrefix(gw.URL, "http://"), faulty.Options{
		DropRequest:  0.2,
		DropResponse: 0.5,
		Match:        func(r *http.Request) bool { return r.Header.Get(poll.CarrierHeader) != "" },
	})
	var conns []net.Conn
	for range 20 {
		conn := mustDial(t, fp.URL()+"/echo", &porthole.Dialer{Carrier: porthole.Poll}, waitLimit)
		echoOnce(t, conn, "opened")
		conns = append(conns, conn)
	}
	if n := gw.OpenTunnels(); n != 20 {
		t.Errorf("20 dials left %d tunnels open, want 20: a retried open made a second session", n)
	}
	if c := fp.Counts(); c.DroppedResponses == 0 {
		t.Fatalf("the proxy lost no open's answer (%+v): the test proved nothing", c)
	}
	for _, c := range conns {
		c.Close()
	}
}
