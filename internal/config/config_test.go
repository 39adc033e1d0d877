package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/internal/tlsutil"
	"github.com/porthole/porthole/service"
)

// writeConfig writes doc as porthole.toml in a new directory, with the
// PEM files the examples name beside it: cert.pem and key.pem (a pair),
// clients-ca.pem (a certificate).
func writeConfig(t testing.TB, doc string) string {
	t.Helper()
	dir := t.TempDir()
	cert, err := tlsutil.SelfSigned("localhost")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := testgw.CertPEM(t, cert)
	for name, b := range map[string][]byte{
		"cert.pem":       certPEM,
		"key.pem":        keyPEM,
		"clients-ca.pem": certPEM,
		"porthole.toml":  []byte(doc),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "porthole.toml")
}

func hexSum(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// A file with every key comes back as the values it says, the routes as
// the gateway takes them.
func TestLoadEveryKey(t *testing.T) {
	path := writeConfig(t, `
[listen]
http = "127.0.0.1:8080"
https = ""
admin = "127.0.0.1:9090"

[tls]
cert = "cert.pem"
key = "key.pem"

[limits]
max_tunnels = 500
shutdown_timeout = "3s"
handshake_timeout = "4s"
ping_interval = "0s"
long_poll = "20s"
session_idle = "1m30s"

[log]
format = "json"
level = "debug"

[[route]]
path = "/echo"
target = "echo"

[[route]]
path = "/ssh"
target = "tcp://127.0.0.1:22"
bare = false
carriers = ["raw", "poll"]
origins = ["https://app.example"]
tokens_sha256 = ["`+hexSum("s3cret")+`"]
client_ca = "clients-ca.pem"
max_tunnels = 10
max_tunnels_per_client = 2
rate_per_client = 0.5
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	if got := [3]string{str(cfg.Listen.HTTP), str(cfg.Listen.HTTPS), str(cfg.Listen.Admin)}; got != [3]string{"127.0.0.1:8080", "", "127.0.0.1:9090"} {
		t.Errorf("listen: %q", got)
	}
	dir := filepath.Dir(path)
	if cfg.TLS != (TLS{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}) {
		t.Errorf("tls: %+v, want the paths beside the file", cfg.TLS)
	}
	l := cfg.Limits
	if *l.MaxTunnels != 500 || *l.ShutdownTimeout != 3*time.Second || *l.HandshakeTimeout != 4*time.Second ||
		*l.PingInterval != 0 || *l.LongPoll != 20*time.Second || *l.SessionIdle != 90*time.Second {
		t.Errorf("limits: %d %v %v %v %v %v", *l.MaxTunnels, *l.ShutdownTimeout, *l.HandshakeTimeout, *l.PingInterval, *l.LongPoll, *l.SessionIdle)
	}
	if cfg.Log != (Log{Format: "json", Level: "debug"}) {
		t.Errorf("log: %+v", cfg.Log)
	}
	if len(cfg.Routes) != 2 {
		t.Fatalf("%d routes, want 2", len(cfg.Routes))
	}
	echo, ssh := cfg.Routes[0], cfg.Routes[1]
	if echo.Path != "/echo" || echo.Service != (service.Echo{}) || !echo.Bare || echo.Auth != nil || echo.Carriers != nil {
		t.Errorf("echo route: %+v; want the bare form on by default and no auth", echo)
	}
	if ssh.Path != "/ssh" || ssh.Service.String() != "tcp://127.0.0.1:22" || ssh.Bare {
		t.Errorf("ssh route: %+v", ssh)
	}
	if strings.Join(ssh.Carriers, ",") != "raw,poll" || strings.Join(ssh.Origins, ",") != "https://app.example" {
		t.Errorf("ssh carriers %q, origins %q", ssh.Carriers, ssh.Origins)
	}
	if ssh.Auth == nil || len(ssh.Auth.Tokens) != 1 || ssh.Auth.Tokens[0] != gateway.HashToken("s3cret") || ssh.Auth.ClientCAs == nil {
		t.Errorf("ssh auth: %+v; want the token's digest and the client CA", ssh.Auth)
	}
	if ssh.Limits != (gateway.Limits{MaxTunnels: 10, MaxTunnelsPerClient: 2, RatePerClient: 0.5}) {
		t.Errorf("ssh limits: %+v", ssh.Limits)
	}
	// The routes are what a gateway takes.
	if _, err := gateway.New(&gateway.Options{Routes: cfg.Routes}); err != nil {
		t.Errorf("gateway.New with the file's routes: %v", err)
	}
}

// An empty file sets nothing: every field says "not in the file".
func TestLoadEmpty(t *testing.T) {
	cfg, err := Load(writeConfig(t, "# nothing yet\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != (Listen{}) || cfg.TLS != (TLS{}) || cfg.Limits != (Limits{}) || cfg.Log != (Log{}) || cfg.Routes != nil {
		t.Errorf("an empty file gave %+v", cfg)
	}
}

// Routes written as an array of inline tables are read the same, and
// their errors have lines too.
func TestLoadInlineRoutes(t *testing.T) {
	cfg, err := Load(writeConfig(t, `route = [
  {path = "/a", target = "echo"},
  {path = "/b", target = "chat", carriers = ["websocket"]},
]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 2 || cfg.Routes[1].Path != "/b" || cfg.Routes[1].Carriers[0] != "websocket" {
		t.Errorf("routes %+v", cfg.Routes)
	}
	_, err = Load(writeConfig(t, "route = [\n  {path = \"/a\", target = \"echo\"},\n  {path = \"/b\", target = \"tcp://x\"},\n]\n"))
	wantErrors(t, err, `porthole.toml:3: route /b: service "tcp://x": a tcp target needs a host and a port`)
}

// Every problem is named with the file and the line of its key or table,
// semantic ones as well as syntax, and all of them at once.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // each a prefix of one error line, in order
	}{
		{"syntax", "[limits]\nmax_tunnels = 3\n[route\n", []string{"porthole.toml:3: expected ']' to close table name"}},
		{"duplicate table", "[limits]\n[limits]\n", []string{"porthole.toml:2: table limits already exists"}},
		{"string for integer", "[limits]\nmax_tunnels = \"many\"\n", []string{"porthole.toml:2: limits.max_tunnels: want an integer, not a string"}},
		{"integer for duration", "[limits]\n\nlong_poll = 25\n", []string{"porthole.toml:3: limits.long_poll: want a string, not an integer"}},
		{"table for routes", "route = 3\n", []string{"porthole.toml:1: route: want [[route]] tables, not an integer"}},
		{"bad duration", "[limits]\nping_interval = \"30\"\nsession_idle = \"0s\"\n", []string{
			`porthole.toml:2: limits.ping_interval "30" is not a duration`,
			`porthole.toml:3: limits.session_idle "0s": must be positive`,
		}},
		{"negative", "[limits]\nmax_tunnels = -1\n", []string{"porthole.toml:2: limits.max_tunnels is -1"}},
		{"address", "[listen]\nhttp = \"8080\"\n", []string{`porthole.toml:2: listen.http "8080": want host:port`}},
		{"log", "[log]\nformat = \"xml\"\nlevel = \"loud\"\n", []string{
			`porthole.toml:2: log.format "xml": use text or json`,
			`porthole.toml:3: log.level "loud": use debug, info, warn or error`,
		}},
		{"tls half", "[tls]\ncert = \"cert.pem\"\n", []string{"porthole.toml:1: [tls] needs both cert and key"}},
		{"tls missing file", "[tls]\ncert = \"nope.pem\"\nkey = \"key.pem\"\n", []string{"porthole.toml:2: tls.cert "}},
		{"route target", "[[route]]\npath = \"/echo\"\ntarget = \"echo\"\n\n[[route]]\npath = \"/ssh\"\ntarget = \"tcp://x\"\n", []string{
			`porthole.toml:7: route /ssh: service "tcp://x": a tcp target needs a host and a port`,
		}},
		{"route without path or target", "[[route]]\nbare = true\n", []string{
			"porthole.toml:1: [[route]] has no path",
			"porthole.toml:1: route has no target",
		}},
		{"route path", "[[route]]\npath = \"echo\"\ntarget = \"echo\"\n", []string{`porthole.toml:2: route path "echo" must start with /`}},
		{"route twice", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\n[[route]]\npath = \"/a\"\ntarget = \"chat\"\n", []string{
			"porthole.toml:5: route /a is given twice (first at line 2)",
		}},
		{"carrier", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\ncarriers = [\n  \"raw\",\n  \"h3\",\n]\n", []string{
			`porthole.toml:6: route /a: unknown carrier "h3"; use raw, websocket, poll`,
		}},
		{"no carriers", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\ncarriers = []\n", []string{"porthole.toml:4: route /a: carriers is empty"}},
		{"origin", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\norigins = [\"https://app.example/\"]\n", []string{
			`porthole.toml:4: route /a: origin "https://app.example/": write it as a browser sends it`,
		}},
		{"token not hex", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\ntokens_sha256 = [\n  \"" + hexSum("x") + "\",\n  \"s3cret\",\n]\n", []string{
			`porthole.toml:6: route /a: tokens_sha256 entry "s3cret" is not a SHA-256 in hex (64 digits); make one with ` + "`porthole hash-token`",
		}},
		{"token short", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\ntokens_sha256 = [\"abcd\"]\n", []string{`porthole.toml:4: route /a: tokens_sha256 entry "abcd" is not a SHA-256`}},
		{"no tokens", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\ntokens_sha256 = []\n", []string{"porthole.toml:4: route /a: tokens_sha256 is empty"}},
		{"client ca missing", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\nclient_ca = \"none.pem\"\n", []string{"porthole.toml:4: route /a: client_ca: open "}},
		{"client ca not pem", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\nclient_ca = \"porthole.toml\"\n", []string{"porthole.toml:4: route /a: client_ca "}},
		{"route limits", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\nrate_per_client = -2\n", []string{"porthole.toml:4: route /a: rate_per_client is -2"}},
		{"rate not a number", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\nrate_per_client = nan\n", []string{"porthole.toml:4: route /a: rate_per_client is NaN"}},
		{"rate infinite", "[[route]]\npath = \"/a\"\ntarget = \"echo\"\nrate_per_client = inf\n", []string{"porthole.toml:4: route /a: rate_per_client is +Inf"}},
		{"tls half, dotted", "# TLS\ntls.key = \"key.pem\"\n", []string{"porthole.toml:2: [tls] needs both cert and key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.doc)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("loaded %+v; want an error", cfg)
			}
			wantErrors(t, err, tc.want...)
			var e *Error
			if !errors.As(err, &e) || e.File != path || e.Line == 0 {
				t.Errorf("error %#v: want a *config.Error with the file and a line", e)
			}
		})
	}
}

// Unknown keys and tables are refused, each at its line, with the keys
// its table takes; the known keys are still checked, and every problem is
// told in the order of the lines.
func TestLoadUnknownKeys(t *testing.T) {
	_, err := Load(writeConfig(t, `[limits]
max_tunnel = 3

[[route]]
path = "/a"
target = "tcp://x"
token = "s3cret"

[metrics]
on = true
`))
	wantErrors(t, err,
		"porthole.toml:2: unknown key limits.max_tunnel; [limits] takes max_tunnels, shutdown_timeout, handshake_timeout, ping_interval, long_poll, session_idle",
		`porthole.toml:6: route /a: service "tcp://x": a tcp target needs a host and a port`,
		"porthole.toml:7: unknown key route.token; [[route]] takes path, target, bare, carriers, origins, tokens_sha256, client_ca, max_tunnels, max_tunnels_per_client, rate_per_client",
		"porthole.toml:9: unknown key metrics; the file takes listen, tls, limits, log, route",
	)
}

// TOML keys are case-sensitive, though the decoder is not: a key in
// another case is refused at its line, once per table.
func TestLoadKeyCase(t *testing.T) {
	_, err := Load(writeConfig(t, "[listen]\nHTTP = \"127.0.0.1:1\"\n\n[[Route]]\npath = \"/a\"\ntarget = \"echo\"\n[[Route]]\nPath = \"/b\"\n"))
	wantErrors(t, err,
		"porthole.toml:2: key listen.HTTP: TOML keys are case-sensitive; write listen.http",
		"porthole.toml:4: key Route: TOML keys are case-sensitive; write route",
		"porthole.toml:7: key Route: TOML keys are case-sensitive; write route",
	)
}

// The README's complete example loads, every key of it.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Configuration\n.*?```toml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```toml block in its Configuration section")
	}
	cfg, err := Load(writeConfig(t, string(m[1])))
	if err != nil {
		t.Fatalf("the README's example: %v", err)
	}
	if len(cfg.Routes) != 3 || cfg.Listen.Admin == nil || cfg.TLS.Cert == "" || cfg.Limits.SessionIdle == nil || cfg.Log.Level == "" {
		t.Errorf("the README's example gave %+v; want every table set", cfg)
	}
	for _, r := range cfg.Routes {
		if r.Path == "/ssh" && (r.Auth == nil || len(r.Auth.Tokens) != 1 || r.Auth.ClientCAs == nil || r.Limits.RatePerClient != 2) {
			t.Errorf("the README's /ssh route: %+v", r)
		}
	}
}

// Paths in the file are taken from the file's directory, not the working
// directory; absolute ones as they are.
func TestLoadRelativePaths(t *testing.T) {
	path := writeConfig(t, "[[route]]\npath = \"/a\"\ntarget = \"echo\"\nclient_ca = \"clients-ca.pem\"\n")
	t.Chdir(t.TempDir()) // where no clients-ca.pem is
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routes[0].Auth == nil || cfg.Routes[0].Auth.ClientCAs == nil {
		t.Fatalf("auth %+v: want the CA from beside the file", cfg.Routes[0].Auth)
	}
	abs := filepath.Join(filepath.Dir(path), "clients-ca.pem")
	other := writeConfig(t, "[[route]]\npath = \"/a\"\ntarget = \"echo\"\nclient_ca = \""+abs+"\"\n")
	if _, err := Load(other); err != nil {
		t.Fatalf("an absolute client_ca: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "none.toml") {
		t.Fatalf("err %v: want one that names the file and wraps os.ErrNotExist", err)
	}
}

// The line index follows TOML's tables: nested and dotted keys, keys
// after an array of tables, elements of multi-line arrays.
func TestLines(t *testing.T) {
	idx := indexLines([]byte(`a = 1
b.c = "x"   # dotted
[t]
k = [
  1,
  {x = 2},
]
[[r]]
p = 1
[r.sub]
q = 2
[[r]]
p = 3
[t2]
"quoted key" = 4
`))
	for path, want := range map[string]int{
		"a": 1, "b.c": 2, "t": 3, "t.k": 4, "t.k[0]": 5, "t.k[1]": 6, "t.k[1].x": 6,
		"r[0]": 8, "r[0].p": 9, "r[0].sub": 10, "r[0].sub.q": 11, "r[1]": 12, "r[1].p": 13,
		"t2.quoted key": 15,
	} {
		if got := idx.at(path); got != want {
			t.Errorf("line of %s: %d, want %d", path, got, want)
		}
	}
	if got := idx.at("r[1].missing"); got != 12 {
		t.Errorf("line of a key the file leaves out: %d, want its table's, 12", got)
	}
	if got := idx.at("nowhere"); got != 0 {
		t.Errorf("line of nothing: %d, want 0", got)
	}
}

// wantErrors checks that err's lines start with want, in order, one each,
// with the test's temporary directory left out.
func wantErrors(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %q", want)
	}
	got := strings.Split(dirRe.ReplaceAllString(err.Error(), ""), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d errors, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n  %s\nwant it to start with\n  %s", i+1, got[i], want[i])
		}
	}
}

// dirRe matches the directory of a test's file at the start of a line.
var dirRe = regexp.MustCompile(`(?m)^/\S*/`)
