package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/porthole/porthole/web"
)

func TestIndexListsRoutesAndHowToConnect(t *testing.T) {
	srv := httptest.NewServer(web.Index([]web.Route{
		{Path: "/echo", Target: "echo", Bare: true},
		{Path: "/ssh", Target: "tcp://127.0.0.1:22"},
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	for _, want := range []string{
		"porthole connect " + srv.URL + "/echo",
		"porthole connect " + srv.URL + "/ssh",
		"ProxyCommand='porthole connect " + srv.URL + "/ssh'",
		"tcp://127.0.0.1:22",
		"GET /echo HTTP/1.0", // the bare form is on for /echo
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "GET /ssh HTTP/1.0") {
		t.Error("page offers the bare form on /ssh, where it is off")
	}
}

func TestIndexOverTLSShowsOpenSSL(t *testing.T) {
	srv := httptest.NewTLSServer(web.Index([]web.Route{{Path: "/echo", Target: "echo", Bare: true}}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	if want := "openssl s_client -quiet -connect " + host; !strings.Contains(string(body), want) {
		t.Errorf("page over TLS lacks %q", want)
	}
}

func TestIndexRefusesOtherMethods(t *testing.T) {
	srv := httptest.NewServer(web.Index(nil))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q; want 405, GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// The page's script and style sheet are served at "/?NAME" with their
// types, revalidated by ETag; the page's policy allows only them and
// WebSocket connections to this gateway.
func TestIndexAssetsAndPolicy(t *testing.T) {
	srv := httptest.NewServer(web.Index([]web.Route{
		{Path: "/echo", Target: "echo", Bare: true},
		{Path: "/chat", Target: "chat"},
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	resp, body := get(t, srv.URL+"/", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "connect-src 'self' ws://" + host + ";", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("policy %q allows something unsafe", csp)
	}
	for _, want := range []string{`<script src="/?app.js" defer>`, `href="/?style.css"`, `data-widget="echo" data-path="/echo"`, `data-widget="chat" data-path="/chat"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	for name, typ := range map[string]string{"app.js": "text/javascript", "style.css": "text/css"} {
		resp, body := get(t, srv.URL+"/?"+name, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) || resp.Header.Get("X-Content-Type-Options") != "nosniff" || len(body) == 0 {
			t.Errorf("GET /?%s = %d %q nosniff=%q, %d bytes", name, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"), len(body))
		}
		etag := resp.Header.Get("ETag")
		if resp, _ := get(t, srv.URL+"/?"+name, http.Header{"If-None-Match": {etag}}); etag == "" || resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET /?%s with If-None-Match %q = %d, want 304", name, etag, resp.StatusCode)
		}
	}
}

// Over TLS the page allows wss:// to its host; a Host that is not a plain
// host name gets no WebSocket source beyond 'self'.
func TestPolicyHosts(t *testing.T) {
	srv := httptest.NewTLSServer(web.Index(nil))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp, want := resp.Header.Get("Content-Security-Policy"), "connect-src 'self' wss://"+strings.TrimPrefix(srv.URL, "https://")+";"; !strings.Contains(csp, want) {
		t.Errorf("policy %q lacks %q", csp, want)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Host = "evil;script-src *"
	web.Index(nil).ServeHTTP(rec, req)
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self';") || strings.Contains(csp, "evil") {
		t.Errorf("policy for Host %q: %q", req.Host, csp)
	}
}

func get(t *testing.T, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}
