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
