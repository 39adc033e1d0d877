package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// TestMetrics opens a tunnel over each carrier, holds a poll session open,
// gets refusals (no route, no credentials, a service down), reloads the
// routes, and checks every metric's numbers exactly.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	logs := &testgw.Buffer{}
	echoRoute := gateway.Route{Path: "/echo", Service: service.Echo{}}
	routes := []gateway.Route{
		echoRoute,
		{Path: "/secret", Service: service.Echo{}, Auth: &gateway.Auth{Tokens: [][32]byte{gateway.HashToken("s3cret")}}},
		{Path: "/down", Service: &service.TCP{Addr: testgw.DeadAddr(t)}},
	}
	gw := testgw.Start(t, gateway.Options{Routes: routes, Metrics: reg, Logger: jsonLogger(logs)})

	closedRe := regexp.MustCompile(`"msg":"tunnel closed"`)
	var pollConn interface{ Close() error }
	for i, c := range carriers {
		conn := dialWith(t, gw.URL+"/echo", &porthole.Dialer{Carrier: c})
		echo(t, conn, "ping")
		if c == porthole.Poll {
			pollConn = conn // kept open for the gauges
			continue
		}
		conn.Close()
		waitCount(t, logs, closedRe, i+1)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	for _, path := range []string{"/nope", "/secret", "/down"} {
		if conn, err := porthole.Dial(ctx, gw.URL+path, &porthole.Dialer{Carrier: porthole.Raw}); err == nil {
			conn.Close()
			t.Fatalf("dial %s opened a tunnel, want a refusal", path)
		}
	}

	compare(t, reg, `
		porthole_tunnels_opened_total{carrier="poll",route="/echo"} 1
		porthole_tunnels_opened_total{carrier="raw",route="/echo"} 1
		porthole_tunnels_opened_total{carrier="websocket",route="/echo"} 1
		porthole_tunnels_open{carrier="poll",route="/echo"} 1
		porthole_tunnels_open{carrier="raw",route="/echo"} 0
		porthole_tunnels_open{carrier="websocket",route="/echo"} 0
	`+pingBytes("raw", "websocket")+`
		porthole_handshake_failures_total{reason="404",route=""} 1
		porthole_handshake_failures_total{reason="401",route="/secret"} 1
		porthole_handshake_failures_total{reason="502",route="/down"} 1
		porthole_poll_sessions{route="/down"} 0
		porthole_poll_sessions{route="/echo"} 1
		porthole_poll_sessions{route="/secret"} 0
	`)
	if got := dialCounts(t, reg); len(got) != 2 || got["/echo"] != 3 || got["/down"] != 1 {
		t.Errorf("porthole_service_dial_seconds counts %v, want /echo 3 and /down 1 (no dial for a refused credential)", got)
	}

	// A reload: /echo goes while its poll session lasts, /more comes.
	if err := gw.SetRoutes([]gateway.Route{{Path: "/more", Service: service.Echo{}}}); err != nil {
		t.Fatal(err)
	}
	compare(t, reg, `
		porthole_poll_sessions{route="/echo"} 1
		porthole_poll_sessions{route="/more"} 0
	`)

	// Once the session ends, the route it outlived is gone.
	pollConn.Close()
	waitCount(t, logs, closedRe, len(carriers))
	compare(t, reg, `
		porthole_tunnels_open{carrier="poll",route="/echo"} 0
		porthole_tunnels_open{carrier="raw",route="/echo"} 0
		porthole_tunnels_open{carrier="websocket",route="/echo"} 0
	`+pingBytes("poll", "raw", "websocket")+`
		porthole_poll_sessions{route="/more"} 0
	`)

	// A handler mounted on another mux counts its tunnels and sessions
	// under its route.
	h, err := gw.Handler(gateway.Route{Path: "/mounted", Service: service.Echo{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := testgw.HTTPServer(t, h, false)
	conn := dialWith(t, srv.URL+"/anything", &porthole.Dialer{Carrier: porthole.Poll})
	echo(t, conn, "ping")
	compare(t, reg, `
		porthole_tunnels_opened_total{carrier="poll",route="/echo"} 1
		porthole_tunnels_opened_total{carrier="poll",route="/mounted"} 1
		porthole_tunnels_opened_total{carrier="raw",route="/echo"} 1
		porthole_tunnels_opened_total{carrier="websocket",route="/echo"} 1
		porthole_poll_sessions{route="/more"} 0
		porthole_poll_sessions{route="/mounted"} 1
	`)
	conn.Close()
	waitCount(t, logs, closedRe, len(carriers)+1)
}

// pingBytes are the byte counts of one "ping" echoed on /echo over each
// of carriers, in the text format.
func pingBytes(carriers ...string) string {
	var lines []string
	for _, c := range carriers {
		for _, dir := range []string{"in", "out"} {
			lines = append(lines, fmt.Sprintf(`porthole_tunnel_bytes_total{carrier=%q,direction=%q,route="/echo"} 4`, c, dir))
		}
	}
	return strings.Join(lines, "\n")
}

// compare checks that the metrics named in want hold exactly want's
// samples, written one a line as in the text format; the HELP and TYPE
// lines are taken from reg.
func compare(t *testing.T, reg prometheus.Gatherer, want string) {
	t.Helper()
	heads := make(map[string]string)
	for name, mf := range gather(t, reg) {
		heads[name] = fmt.Sprintf("# HELP %s %s\n# TYPE %s %s\n", name, mf.GetHelp(), name, strings.ToLower(mf.GetType().String()))
	}
	var names []string
	samples := make(map[string][]string)
	for line := range strings.SplitSeq(want, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		if samples[name] == nil {
			names = append(names, name)
		}
		samples[name] = append(samples[name], line)
	}
	var text strings.Builder
	for _, name := range names {
		if heads[name] == "" {
			t.Fatalf("%s is not in the registry", name)
		}
		text.WriteString(heads[name] + strings.Join(samples[name], "\n") + "\n")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(text.String()), names...); err != nil {
		t.Error(err)
	}
}

// dialCounts returns porthole_service_dial_seconds's sample count by route.
func dialCounts(t *testing.T, reg prometheus.Gatherer) map[string]uint64 {
	t.Helper()
	counts := make(map[string]uint64)
	for _, m := range gather(t, reg)["porthole_service_dial_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" {
				counts[l.GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return counts
}

// gather returns reg's metric families by name.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	return byName
}

// TestMetricsRegistry checks that two gateways share a registry when each
// has a label of its own, and that a second gateway under the same labels
// is refused with prometheus's reason.
func TestMetricsRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	newGateway := func(name string) error {
		_, err := gateway.New(&gateway.Options{
			Routes:  []gateway.Route{{Path: "/echo", Service: service.Echo{}}},
			Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"gateway": name}, reg),
		})
		return err
	}
	if err := newGateway("a"); err != nil {
		t.Fatal(err)
	}
	if err := newGateway("b"); err != nil {
		t.Fatalf("a second gateway with a label of its own: %v", err)
	}
	if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](newGateway("a")); !ok {
		t.Fatal("a second gateway under the same labels was not refused with prometheus.AlreadyRegisteredError")
	}
}
