package porthole_test

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/carrier/poll"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/faulty"
	"github.com/porthole/porthole/internal/testgw"
)

// TestAutoFallsBack: with Upgrade stripped on the way, as many proxies do,
// auto gets a fast 426 from the gateway for raw and for websocket, falls
// back to poll, says why in its log, and remembers poll for the gateway.
func TestAutoFallsBack(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	var log testgw.Buffer
	d := &porthole.Dialer{
		DialContext: editingDialer([]testgw.Edit{testgw.Without("Upgrade", "Connection")}),
		Logger:      slog.New(slog.NewTextHandler(&log, nil)),
	}
	conn := mustDial(t, gw.URL+"/echo", d, waitLimit)
	echoOnce(t, conn, "through whatever works")
	if _, ok := conn.(*poll.Conn); !ok {
		t.Fatalf("auto chose %T, want the poll carrier", conn)
	}
	for _, want := range []string{"carrier=raw next=websocket", "carrier=websocket next=poll", "426", "carrier chosen\" carrier=poll"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	// The next dial starts with poll.
	before := log.String()
	echoOnce(t, mustDial(t, gw.URL+"/echo", d, waitLimit), "again")
	if again := strings.TrimPrefix(log.String(), before); strings.Count(again, "\n") != 1 || !strings.Contains(again, "carrier=poll") {
		t.Errorf("the second dial did not start with poll:\n%s", again)
	}
}

// TestAutoPrefersKeepAlives: through a reverse proxy, raw works but auto
// sees from the gateway's answer that something carries the connection,
// and takes websocket, whose pings keep idle tunnels alive.
func TestAutoPrefersKeepAlives(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	rp := faulty.Start(t, strings.TrimPrefix(gw.URL, "http://"), faulty.Options{})
	var log testgw.Buffer
	d := &porthole.Dialer{Logger: slog.New(slog.NewTextHandler(&log, nil))}
	conn := mustDial(t, rp.URL()+"/echo", d, waitLimit)
	echoOnce(t, conn, "relayed")
	for _, want := range []string{"intermediary carries it", "carrier=websocket"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	// Straight to the gateway, raw is taken.
	var direct testgw.Buffer
	d.Logger = slog.New(slog.NewTextHandler(&direct, nil))
	echoOnce(t, mustDial(t, gw.URL+"/echo", d, waitLimit), "direct")
	if !strings.Contains(direct.String(), "carrier=raw") || strings.Count(direct.String(), "\n") != 1 {
		t.Errorf("a direct dial did not take raw at once:\n%s", direct.String())
	}
}

// TestAutoStopsEarly: failures every carrier would meet end the choice at
// once, with the gateway's answer: an unknown route, a dead service.
func TestAutoStopsEarly(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	var log testgw.Buffer
	d := &porthole.Dialer{Logger: slog.New(slog.NewTextHandler(&log, nil))}
	for path, code := range map[string]int{"/nope": http.StatusNotFound, "/dead": http.StatusBadGateway} {
		_, err := porthole.Dial(dialContext(t), gw.URL+path, d)
		var se *porthole.StatusError
		if !errors.As(err, &se) || se.Code != code {
			t.Errorf("Dial %s = %v, want the gateway's %d", path, err, code)
		}
	}
	if log.String() != "" {
		t.Errorf("auto tried other carriers:\n%s", log.String())
	}
}
