//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hashTokenCmd runs porthole hash-token on token, as a person makes a
// tokens_sha256 entry, and checks it against the digest made here.
func hashTokenCmd(t *testing.T, token string) string {
	t.Helper()
	r := runPorthole(t, []byte(token+"\n"), "hash-token")
	sum := sha256.Sum256([]byte(token))
	if want := hex.EncodeToString(sum[:]) + "\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("hash-token: exit %d, stdout %q, want 0 and %q; stderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// -check loads and checks a file without listening: "FILE: ok (N routes)"
// and exit 0, or each problem at FILE:LINE and exit 1.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeFile(t, dir, "good.toml", `[listen]
http = "127.0.0.1:0"

[[route]]
path = "/echo"
target = "echo"

[[route]]
path = "/ssh"
target = "tcp://127.0.0.1:22"
`)
	r := runPorthole(t, nil, "serve", "-config", good, "-check")
	if want := good + ": ok (2 routes)\n"; r.code != 0 || r.stdout != want || strings.Contains(r.stderr, "msg=listening") {
		t.Fatalf("-check a good file: exit %d, stdout %q, want 0 and %q and no listener; stderr:\n%s", r.code, r.stdout, want, r.stderr)
	}

	// Without routes, the file gets the default ones.
	bare := writeFile(t, dir, "bare.toml", "[limits]\nlong_poll = \"10s\"\n")
	if r := runPorthole(t, nil, "serve", "-config", bare, "-check"); r.code != 0 || r.stdout != bare+": ok (2 routes)\n" {
		t.Fatalf("-check a file without routes: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}

	bad := writeFile(t, dir, "bad.toml", `[limits]
long_poll = "25"

[[route]]
path = "/ssh"
target = "tcp://x"
`)
	r = runPorthole(t, nil, "serve", "-config", bad, "-check")
	for _, want := range []string{
		bad + `:2: limits.long_poll "25" is not a duration`,
		bad + `:6: route /ssh: service "tcp://x": a tcp target needs a host and a port`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("-check a bad file: stderr lacks %q", want)
		}
	}
	if r.code != 1 || r.stdout != "" {
		t.Errorf("-check a bad file: exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
	}

	unknown := writeFile(t, dir, "unknown.toml", "[listen]\nhttp = \"127.0.0.1:0\"\nport = 8080\n")
	if r := runPorthole(t, nil, "serve", "-config", unknown, "-check"); r.code != 1 || !strings.Contains(r.stderr, unknown+":3: unknown key listen.port") {
		t.Errorf("-check a file with an unknown key: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if r := runPorthole(t, nil, "serve", "-check"); r.code != 1 || !strings.Contains(r.stderr, "-config") {
		t.Errorf("-check without -config: exit %d; stderr:\n%s", r.code, r.stderr)
	}
}

// A file with every key passes -check: each setting has its serve flag.
func TestConfigCheckEveryKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCA(t, dir) // ca.pem, cert.pem, key.pem
	file := writeFile(t, dir, "porthole.toml", `[listen]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
admin = "127.0.0.1:0"

[tls]
cert = "cert.pem"
key = "key.pem"

[limits]
max_tunnels = 100
shutdown_timeout = "1s"
handshake_timeout = "2s"
ping_interval = "0s"
long_poll = "3s"
session_idle = "4s"

[log]
format = "json"
level = "warn"

[[route]]
path = "/ssh"
target = "tcp://127.0.0.1:22"
bare = true
carriers = ["raw"]
origins = ["https://app.example"]
tokens_sha256 = ["`+strings.Repeat("0a", 32)+`"]
client_ca = "ca.pem"
max_tunnels = 3
max_tunnels_per_client = 1
rate_per_client = 0.5
`)
	if r := runPorthole(t, nil, "serve", "-config", file, "-check"); r.code != 0 || r.stdout != file+": ok (1 routes)\n" {
		t.Fatalf("-check: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// The file's values go to the flags the command line left alone; a -cert
// or -key given replaces the file's pair whole.
func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir)
	file := writeFile(t, dir, "porthole.toml", "[listen]\nhttp = \"127.0.0.1:7\"\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n[limits]\nlong_poll = \"9s\"\n")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "")
	longPoll := fs.Duration("long-poll", 25*time.Second, "")
	cert := fs.String("cert", "", "")
	key := fs.String("key", "", "")
	if err := fs.Parse([]string{"-long-poll", "5s", "-cert", "mine.pem"}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(fs, file, false); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:7" || *longPoll != 5*time.Second || *cert != "mine.pem" || *key != "" {
		t.Errorf("listen %q, long-poll %v, cert %q, key %q; want the file's listen, the flags' long-poll and cert, no key from the file", *listen, *longPoll, *cert, *key)
	}
	if !isSet(fs, "listen") {
		t.Error("a value from the file does not count as set, so max-tunnels would not warn when lowered")
	}
}

// serve -config: the file's routes with their policies and its settings,
// under the flags given beside it.
func TestConfigServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writeFile(t, dir, "porthole.toml", `[listen]
http = "127.0.0.1:1"   # -listen on the command line wins

[log]
format = "json"        # so does -log-format
level = "debug"        # this one is the file's: refusals are logged at debug

[[route]]
path = "/echo"
target = "echo"

[[route]]
path = "/secret"
target = "echo"
tokens_sha256 = ["`+hashTokenCmd(t, "s3cret")+`"]
`)
	g := startServe(t, "-config", file, "-listen", "127.0.0.1:0", "-log-format", "text")
	if g.addr == "127.0.0.1:1" {
		t.Fatal("the file's listen.http won over -listen")
	}

	if r := runPorthole(t, []byte("open"), "connect", g.url+"/echo"); r.code != 0 || r.stdout != "open" {
		t.Errorf("connect /echo: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPorthole(t, []byte("guarded"), "connect", "-token", "s3cret", g.url+"/secret"); r.code != 0 || r.stdout != "guarded" {
		t.Errorf("connect -token /secret: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPorthole(t, []byte("x"), "connect", g.url+"/secret"); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "401") {
		t.Errorf("connect /secret without a token: exit %d, stdout %q, want 1 and a 401; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPorthole(t, []byte("x"), "connect", "-token", "guess", g.url+"/secret"); r.code != 1 || !strings.Contains(r.stderr, "403") {
		t.Errorf("connect /secret with a wrong token: exit %d, want 1 and a 403; stderr:\n%s", r.code, r.stderr)
	}
	g.waitLog(regexp.MustCompile(`level=DEBUG msg="tunnel refused" route=/secret .*status=401`))
	g.stop()
}

// -route beside -config replaces the file's routes.
func TestConfigRouteFlags(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "porthole.toml", "[[route]]\npath = \"/fromfile\"\ntarget = \"echo\"\n")
	g := startServe(t, "-config", file, "-listen", "127.0.0.1:0", "-route", "/fromflag=echo")
	if r := runPorthole(t, []byte("abc"), "connect", g.url+"/fromflag"); r.code != 0 || r.stdout != "abc" {
		t.Errorf("connect /fromflag: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPorthole(t, []byte("abc"), "connect", g.url+"/fromfile"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("connect /fromfile: exit %d, want 1 and a 404; stderr:\n%s", r.code, r.stderr)
	}
}

// SIGHUP reloads the file: an added route opens, a removed one refuses new
// tunnels, a changed one follows its new policy, and the tunnels open
// before are untouched (the chat room too: a new participant joins the
// same room).
func TestConfigReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v1 := `[[route]]
path = "/old"
target = "echo"

[[route]]
path = "/echo"
target = "echo"

[[route]]
path = "/chat"
target = "chat"
`
	file := writeFile(t, dir, "porthole.toml", v1)
	g := startServe(t, "-config", file, "-listen", "127.0.0.1:0")

	oldIn, old := startStdio(t, g.url+"/old")
	io.WriteString(oldIn, "before\n")
	old.waitOutput("before\n")
	chatIn, chat := startStdio(t, g.url+"/chat")
	chat.waitOutput("* you are guest1; nobody else is here yet\n")

	writeFile(t, dir, "porthole.toml", `[[route]]
path = "/new"
target = "echo"

[[route]]
path = "/echo"
target = "echo"
tokens_sha256 = ["`+hashTokenCmd(t, "s3cret")+`"]

[[route]]
path = "/chat"
target = "chat"
`)
	g.signal(syscall.SIGHUP)
	g.waitLog(regexp.MustCompile(`msg="config reloaded" file=\S+ routes=3`))

	io.WriteString(oldIn, "after\n")
	old.waitOutput("before\nafter\n")
	if r := runPorthole(t, []byte("abc"), "connect", g.url+"/new"); r.code != 0 || r.stdout != "abc" {
		t.Errorf("connect to the added route: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPorthole(t, []byte("abc"), "connect", g.url+"/old"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("connect to the removed route: exit %d, want 1 and a 404; stderr:\n%s", r.code, r.stderr)
	}
	if r := runPorthole(t, []byte("abc"), "connect", g.url+"/echo"); r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Errorf("connect without a token to the route that now needs one: exit %d, want 1 and a 401; stderr:\n%s", r.code, r.stderr)
	}
	if r := runPorthole(t, []byte("abc"), "connect", "-token", "s3cret", g.url+"/echo"); r.code != 0 || r.stdout != "abc" {
		t.Errorf("connect -token to the changed route: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPorthole(t, []byte("hello\n"), "connect", g.url+"/chat"); r.code != 0 || !strings.HasPrefix(r.stdout, "* you are guest2; also here: guest1\n") {
		t.Errorf("joining the chat after the reload: exit %d, stdout %q, want the room of before; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	chat.waitFor(&chat.stdout, "guest2's line", func(s string) bool {
		return strings.HasPrefix(s, "* you are guest1; nobody else is here yet\n* guest2 joined\nguest2: hello\n")
	})

	oldIn.Close()
	chatIn.Close()
	if code := old.wait(); code != 0 {
		t.Errorf("the tunnel on the removed route exited %d", code)
	}
	g.stop()
}

// An invalid file at SIGHUP is refused with FILE:LINE: reason, and the
// gateway keeps its routes; a later good file is taken.
func TestConfigReloadInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writeFile(t, dir, "porthole.toml", "[[route]]\npath = \"/echo\"\ntarget = \"echo\"\n")
	g := startServe(t, "-config", file, "-listen", "127.0.0.1:0")

	writeFile(t, dir, "porthole.toml", `[[route]]
path = "/echo"
target = "echo"

[[route]]
path = "/ssh"
target = "tcp://nowhere"
`)
	g.signal(syscall.SIGHUP)
	g.waitLog(regexp.MustCompile(`level=ERROR msg="config reload refused; the running configuration stays" err="` +
		regexp.QuoteMeta(file) + `:7: route /ssh: service \\"tcp://nowhere\\": a tcp target needs a host and a port`))
	if r := runPorthole(t, []byte("abc"), "connect", g.url+"/echo"); r.code != 0 || r.stdout != "abc" {
		t.Errorf("connect /echo after a refused reload: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}

	writeFile(t, dir, "porthole.toml", "[[route]]\npath = \"/echo\"\ntarget = \"echo\"\n\n[[route]]\npath = \"/two\"\ntarget = \"echo\"\n")
	g.signal(syscall.SIGHUP)
	g.waitLog(regexp.MustCompile(`msg="config reloaded" file=\S+ routes=2`))
	if r := runPorthole(t, []byte("abc"), "connect", g.url+"/two"); r.code != 0 || r.stdout != "abc" {
		t.Errorf("connect /two after the fixed file: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	g.stop()
}
