package proxy_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/porthole/porthole/internal/proxy"
)

// setEnv clears every variable FromEnvironment reads, then sets vars
// ("NAME=value") for the test.
func setEnv(t *testing.T, vars ...string) {
	for _, name := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(name, "")
	}
	for _, v := range vars {
		name, value, _ := strings.Cut(v, "=")
		t.Setenv(name, value)
	}
}

// pick returns the proxy f picks for target, as a string ("" for direct).
func pick(t *testing.T, f proxy.Func, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f(u)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	if p == nil {
		return ""
	}
	return p.String()
}

func TestFromEnvironment(t *testing.T) {
	const hp, hsp = "http://hp.test:3128", "http://hsp.test:3129"
	for _, tc := range []struct {
		name string
		env  []string
		want map[string]string // target → proxy picked, "" for direct
	}{
		{"none", nil, map[string]string{
			"https://gw.porthole.test/echo": "",
			"http://gw.porthole.test/echo":  "",
		}},
		{"upper case", []string{"HTTP_PROXY=" + hp, "HTTPS_PROXY=" + hsp}, map[string]string{
			"https://gw.porthole.test/echo":  hsp,
			"wss://gw.porthole.test/echo":    hsp,
			"http://gw.porthole.test/echo":   hp,
			"ws://gw.porthole.test:8080/ssh": hp,
		}},
		{"lower case", []string{"http_proxy=" + hp, "https_proxy=" + hsp}, map[string]string{
			"wss://gw.porthole.test/echo": hsp,
			"ws://gw.porthole.test/echo":  hp,
		}},
		{"lower case wins", []string{"HTTPS_PROXY=http://upper.test:1", "https_proxy=" + hsp}, map[string]string{
			"wss://gw.porthole.test/echo": hsp,
		}},
		{"https only", []string{"HTTPS_PROXY=" + hsp}, map[string]string{
			"wss://gw.porthole.test/echo": hsp,
			"ws://gw.porthole.test/echo":  "",
		}},
		{"no scheme means http", []string{"HTTPS_PROXY=hsp.test:3129"}, map[string]string{
			"https://gw.porthole.test/echo": hsp,
		}},
		{"credentials kept", []string{"HTTPS_PROXY=http://u:p@hsp.test:3129"}, map[string]string{
			"https://gw.porthole.test/echo": "http://u:p@hsp.test:3129",
		}},
		{"NO_PROXY domain", []string{"HTTPS_PROXY=" + hsp, "NO_PROXY=.porthole.test, other.test"}, map[string]string{
			"https://gw.porthole.test/echo": "",
			"wss://porthole.test/echo":      hsp, // ".porthole.test" matches subdomains only
			"wss://other.test/echo":         "",
			"wss://sub.other.test/echo":     "", // "other.test" matches it and its subdomains
			"wss://gw.example.test/echo":    hsp,
		}},
		{"no_proxy lower case", []string{"https_proxy=" + hsp, "no_proxy=gw.porthole.test"}, map[string]string{
			"wss://gw.porthole.test/echo":  "",
			"wss://gw2.porthole.test/echo": hsp,
		}},
		{"NO_PROXY port", []string{"HTTPS_PROXY=" + hsp, "NO_PROXY=gw.porthole.test:8443"}, map[string]string{
			"https://gw.porthole.test:8443/echo": "",
			"https://gw.porthole.test/echo":      hsp,
		}},
		{"NO_PROXY address range", []string{"HTTPS_PROXY=" + hsp, "NO_PROXY=10.0.0.0/8"}, map[string]string{
			"https://10.1.2.3/echo":    "",
			"https://192.0.2.1/echo":   hsp,
			"https://[2001:db8::1]/ws": hsp,
		}},
		{"NO_PROXY star", []string{"HTTPS_PROXY=" + hsp, "NO_PROXY=*"}, map[string]string{
			"https://gw.porthole.test/echo": "",
		}},
		{"loopback never proxied", []string{"HTTP_PROXY=" + hp, "HTTPS_PROXY=" + hsp}, map[string]string{
			"https://localhost:8443/echo": "",
			"http://127.0.0.1:8080/echo":  "",
			"ws://[::1]:8080/echo":        "",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env...)
			f := proxy.FromEnvironment()
			for target, want := range tc.want {
				if got := pick(t, f, target); got != want {
					t.Errorf("%s: proxy %q, want %q", target, got, want)
				}
			}
		})
	}
}

func TestFromEnvironmentReadsAtTheCall(t *testing.T) {
	setEnv(t, "HTTPS_PROXY=http://before.test:1")
	f := proxy.FromEnvironment()
	t.Setenv("HTTPS_PROXY", "http://after.test:1")
	if got := pick(t, f, "wss://gw.porthole.test/"); got != "http://before.test:1" {
		t.Errorf("proxy %q, want the one set before the call", got)
	}
}

func TestFromEnvironmentBadValue(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"socks5://u:secret@s.test:1080", "only http:// and https://"},
		{"http://u:secret@host:port:bad", "invalid proxy URL"},
		{"http://u:secret@/", "no host"},
	} {
		setEnv(t, "HTTPS_PROXY="+tc.value)
		f := proxy.FromEnvironment()
		_, err := f(&url.URL{Scheme: "wss", Host: "gw.porthole.test"})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "HTTPS_PROXY") {
			t.Errorf("HTTPS_PROXY=%s: error %v, want one naming HTTPS_PROXY that says %q", tc.value, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("HTTPS_PROXY=%s: the error shows the password: %v", tc.value, err)
		}
		// The http proxy is unset, so ws:// gateways are unaffected.
		if got := pick(t, f, "ws://gw.porthole.test/"); got != "" {
			t.Errorf("HTTPS_PROXY=%s: ws:// went through %q", tc.value, got)
		}
	}
}

func TestFixed(t *testing.T) {
	p, _ := url.Parse("http://u:p@proxy.test:3128")
	for _, target := range []string{"https://localhost/", "ws://127.0.0.1:8080/echo", "wss://gw.porthole.test/"} {
		if got := pick(t, proxy.Fixed(p), target); got != p.String() {
			t.Errorf("Fixed(%s) for %s: %q", p.Redacted(), target, got)
		}
		if got := pick(t, proxy.Fixed(nil), target); got != "" {
			t.Errorf("Fixed(nil) for %s: %q, want direct", target, got)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want, addr string }{
		{"", "", ""},
		{"proxy.test:3128", "http://proxy.test:3128", "proxy.test:3128"},
		{"http://u:p@proxy.test", "http://u:p@proxy.test", "proxy.test:80"},
		{"https://proxy.test", "https://proxy.test", "proxy.test:443"},
		{"http://[::1]:3128", "http://[::1]:3128", "[::1]:3128"},
	} {
		u, err := proxy.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if tc.want == "" {
			if u != nil {
				t.Errorf("Parse(%q) = %v, want nil", tc.in, u)
			}
			continue
		}
		if u.String() != tc.want || proxy.Addr(u) != tc.addr {
			t.Errorf("Parse(%q) = %v with Addr %s, want %s with Addr %s", tc.in, u, proxy.Addr(u), tc.want, tc.addr)
		}
	}
	for _, in := range []string{"ftp://u:secret@proxy.test", "http://u:secret@", "http://u:secret@host:port:x"} {
		_, err := proxy.Parse(in)
		if err == nil {
			t.Errorf("Parse(%q): no error", in)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q): the error shows the password: %v", in, err)
		}
	}
}

func TestAuthorization(t *testing.T) {
	for _, tc := range []struct{ proxy, want string }{
		{"http://proxy.test:3128", ""},
		{"http://aladdin:opensesame@proxy.test", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
		{"http://us%40er:p%3Ass@proxy.test", "Basic dXNAZXI6cDpzcw=="}, // "us@er:p:ss"
		{"http://user@proxy.test", "Basic dXNlcjo="},                   // "user:"
	} {
		u, err := url.Parse(tc.proxy)
		if err != nil {
			t.Fatal(err)
		}
		if got := proxy.Authorization(u); got != tc.want {
			t.Errorf("Authorization(%s) = %q, want %q", tc.proxy, got, tc.want)
		}
	}
	if got := proxy.Authorization(nil); got != "" {
		t.Errorf("Authorization(nil) = %q", got)
	}
}
