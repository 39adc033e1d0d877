package porthole_test

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// carriers are the carriers every policy test runs over.
var carriers = []string{porthole.Raw, porthole.WebSocket, porthole.Poll}

// dialErr dials path over carrier with token and returns the refusal's
// status, or 0 when the tunnel opened (and echoed).
func dialStatus(t *testing.T, url, carrierName string, d porthole.Dialer) (int, *porthole.StatusError) {
	t.Helper()
	d.Carrier = carrierName
	conn, err := porthole.Dial(dialContext(t), url, &d)
	if err == nil {
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(waitLimit))
		echoOnce(t, conn, "let in")
		return 0, nil
	}
	var se *porthole.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Dial over %s: %v, want a refusal or a tunnel", carrierName, err)
	}
	return se.Code, se
}

// TestTokenAuth: a route with bearer tokens lets in a client with one of
// them, over every carrier; without a token it answers 401 with
// WWW-Authenticate, with a wrong one 403. A browser's ways in work too: a
// Sec-WebSocket-Protocol entry and a cookie; a token in the URL does not.
func TestTokenAuth(t *testing.T) {
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{{
		Path:    "/sec",
		Service: service.Echo{},
		Auth:    &gateway.Auth{Tokens: [][32]byte{gateway.HashToken("s3cret"), gateway.HashToken("other")}},
	}}})
	for _, c := range carriers {
		t.Run(c, func(t *testing.T) {
			if code, se := dialStatus(t, gw.URL+"/sec", c, porthole.Dialer{}); code != http.StatusUnauthorized || se.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("no token: %d, WWW-Authenticate %q; want 401 with it", code, se.Header.Get("WWW-Authenticate"))
			}
			if code, _ := dialStatus(t, gw.URL+"/sec", c, porthole.Dialer{Token: "s3cret"}); code != 0 {
				t.Errorf("right token: %d, want a tunnel", code)
			}
			if code, _ := dialStatus(t, gw.TLSURL+"/sec", c, porthole.Dialer{Token: "other", Fingerprint: gw.Pin}); code != 0 {
				t.Errorf("second token over https: %d, want a tunnel", code)
			}
		})
	}
	// Wrong tokens from a fresh address each time would not be slowed
	// down; from this one they are, below. One wrong try here.
	if code, _ := dialStatus(t, gw.URL+"/sec", porthole.Raw, porthole.Dialer{Token: "guess"}); code != http.StatusForbidden {
		t.Errorf("wrong token: %d, want 403", code)
	}

	ws := func(extra string) *http.Response {
		req := strings.TrimSuffix(testgw.WSRequest(strings.TrimPrefix(gw.URL, "http://"), "/sec"), "\r\n") + extra + "\r\n"
		resp, _ := testgw.Ask(t, gw.Connect(t, false), req)
		return resp
	}
	if r := ws("Sec-WebSocket-Protocol: binary, porthole.token.s3cret\r\n"); r.StatusCode != http.StatusSwitchingProtocols || r.Header.Get("Sec-WebSocket-Protocol") != "binary" {
		t.Errorf("token in Sec-WebSocket-Protocol: %s, protocol %q; want 101 and binary", r.Status, r.Header.Get("Sec-WebSocket-Protocol"))
	}
	if r := ws("Cookie: porthole_token=s3cret\r\n"); r.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("token in a cookie: %s, want 101", r.Status)
	}
	raw := "GET /sec?token=s3cret&access_token=s3cret HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\n"
	if r, _ := testgw.Ask(t, gw.Connect(t, false), raw); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("token in the URL: %s, want 401 (never read from there)", r.Status)
	}
}

// TestAuthFailuresSlowed: after five refused tokens from one address, its
// requests get 429 with Retry-After, even with the right token.
func TestAuthFailuresSlowed(t *testing.T) {
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{{
		Path: "/sec", Service: service.Echo{},
		Auth: &gateway.Auth{Tokens: [][32]byte{gateway.HashToken("s3cret")}},
	}}})
	for i := range 5 {
		if code, _ := dialStatus(t, gw.URL+"/sec", porthole.Raw, porthole.Dialer{Token: "guess"}); code != http.StatusForbidden {
			t.Fatalf("wrong token %d: %d, want 403", i+1, code)
		}
	}
	code, se := dialStatus(t, gw.URL+"/sec", porthole.Raw, porthole.Dialer{Token: "s3cret"})
	if code != http.StatusTooManyRequests || se.Header.Get("Retry-After") == "" {
		t.Fatalf("after 5 refusals: %d, want 429 with Retry-After", code)
	}
}

// TestClientCertAuth: a route with client CAs lets in a client whose
// certificate they signed, over every carrier; without a certificate it
// answers 401, with one from another CA 403.
func TestClientCertAuth(t *testing.T) {
	ca := testgw.NewCA(t, "clients")
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{{
		Path: "/mtls", Service: service.Echo{},
		Auth: &gateway.Auth{ClientCAs: ca.Pool()},
	}}})
	good := ca.ClientCert(t)
	bad := testgw.NewCA(t, "strangers").ClientCert(t)
	dialer := func(certs ...tls.Certificate) porthole.Dialer {
		return porthole.Dialer{Fingerprint: gw.Pin, TLSConfig: &tls.Config{Certificates: certs}}
	}
	for _, c := range carriers {
		t.Run(c, func(t *testing.T) {
			if code, _ := dialStatus(t, gw.TLSURL+"/mtls", c, dialer(good)); code != 0 {
				t.Errorf("trusted certificate: %d, want a tunnel", code)
			}
			if code, _ := dialStatus(t, gw.TLSURL+"/mtls", c, dialer()); code != http.StatusUnauthorized {
				t.Errorf("no certificate: %d, want 401", code)
			}
			if code, _ := dialStatus(t, gw.TLSURL+"/mtls", c, dialer(bad)); code != http.StatusForbidden {
				t.Errorf("stranger's certificate: %d, want 403", code)
			}
		})
	}
}

// TestRouteLimits: caps on a route's tunnels per client and per second
// answer 429 with Retry-After; a closed tunnel gives its place back.
func TestRouteLimits(t *testing.T) {
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/one", Service: service.Echo{}, Limits: gateway.Limits{MaxTunnelsPerClient: 1}},
		{Path: "/slow", Service: service.Echo{}, Limits: gateway.Limits{RatePerClient: 2}},
		{Path: "/solo", Service: service.Echo{}, Limits: gateway.Limits{MaxTunnels: 1}},
	}})
	for _, path := range []string{"/one", "/solo"} {
		for _, c := range carriers {
			// A place comes back once the gateway has seen the previous
			// tunnel close: until then, 429.
			first := dialWhenFree(t, gw.URL+path, c)
			echoOnce(t, first, "first")
			code, se := dialStatus(t, gw.URL+path, c, porthole.Dialer{})
			if code != http.StatusTooManyRequests || se.Header.Get("Retry-After") == "" {
				t.Fatalf("%s over %s, second tunnel: %d, want 429 with Retry-After", path, c, code)
			}
			first.Close()
			dialWhenFree(t, gw.URL+path, c).Close()
		}
	}
	limited := 0
	for range 4 {
		if code, _ := dialStatus(t, gw.URL+"/slow", porthole.Raw, porthole.Dialer{}); code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("4 tunnels at once on a route of 2 per second: none refused")
	}
}

// TestRouteCarriers: a route that allows only some carriers refuses the
// others with 403 naming the allowed ones, and auto falls back to them.
func TestRouteCarriers(t *testing.T) {
	gw := startGateway(t, gateway.Options{Routes: []gateway.Route{
		{Path: "/pollonly", Service: service.Echo{}, Carriers: []string{"poll"}},
	}})
	for _, c := range []string{porthole.Raw, porthole.WebSocket} {
		code, se := dialStatus(t, gw.URL+"/pollonly", c, porthole.Dialer{})
		if code != http.StatusForbidden || se.Header.Get("Porthole-Carriers") != "poll" || !strings.Contains(se.Reason, "not allowed") {
			t.Errorf("%s on a poll-only route: %d %v, want 403 naming poll", c, code, se)
		}
	}
	echoOnce(t, mustDial(t, gw.URL+"/pollonly", nil, waitLimit), "auto finds poll")
	if _, err := gateway.New(&gateway.Options{Routes: []gateway.Route{{Path: "/x", Service: service.Echo{}, Carriers: []string{"pigeon"}}}}); err == nil {
		t.Error("a route with an unknown carrier was accepted")
	}
}

// dialWhenFree dials url over carrierName, retrying while the answer is
// 429, within waitLimit.
func dialWhenFree(t *testing.T, url, carrierName string) net.Conn {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); ; {
		conn, err := porthole.Dial(dialContext(t), url, &porthole.Dialer{Carrier: carrierName})
		if err == nil {
			t.Cleanup(func() { conn.Close() })
			conn.SetDeadline(deadline)
			return conn
		}
		var se *porthole.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("Dial %s over %s: %v", url, carrierName, err)
		}
	}
}
