package porthole_test

import (
	"testing"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// TestSetRoutes: a reload that removes /a and adds /b leaves the open
// tunnels on /a working, a poll session among them; new tunnels to /a get
// 404 and /b works. A bad set of routes changes nothing.
func TestSetRoutes(t *testing.T) {
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{{Path: "/a", Service: service.Echo{}}}})
	open := map[string]interface{ Close() error }{}
	conns := map[string]func(string){}
	for _, c := range carriers {
		conn := mustDial(t, gw.URL+"/a", &porthole.Dialer{Carrier: c}, waitLimit)
		echoOnce(t, conn, "before")
		open[c] = conn
		conns[c] = func(msg string) { echoOnce(t, conn, msg) }
	}
	if err := gw.SetRoutes([]gateway.Route{{Path: "/b", Service: service.Echo{}}, {Path: "/b", Service: service.Echo{}}}); err == nil {
		t.Fatal("routes with a path given twice were accepted")
	}
	if err := gw.SetRoutes([]gateway.Route{{Path: "/b", Service: service.Echo{}}}); err != nil {
		t.Fatal(err)
	}
	for c, echo := range conns {
		t.Run(c, func(t *testing.T) { echo("after the reload") })
	}
	if code, _ := dialStatus(t, gw.URL+"/a", porthole.Raw, porthole.Dialer{}); code != 404 {
		t.Errorf("new tunnel to the removed route: %d, want 404", code)
	}
	if code, _ := dialStatus(t, gw.URL+"/b", porthole.Poll, porthole.Dialer{}); code != 0 {
		t.Errorf("new tunnel to the added route: %d, want a tunnel", code)
	}
	for _, c := range open {
		c.Close()
	}
}
