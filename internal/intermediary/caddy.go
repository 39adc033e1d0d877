package intermediary

import (
	"fmt"
	"path/filepath"
	"testing"
)

// Caddy runs Caddy as a reverse proxy (reverse_proxy, its defaults) to
// upstream, the host:port of a plain-HTTP server, and returns its
// address, "127.0.0.1:PORT". It serves plain HTTP for any Host, with no
// admin endpoint and no automatic HTTPS, and keeps all its state (HOME,
// XDG_DATA_HOME, XDG_CONFIG_HOME) in the test's temporary directory.
// Requests are logged to its output. Caddy stops when the test ends.
//
// Caddy 2.6 cannot take a listening socket from the test; it binds port 0
// on 127.0.0.1 itself, and is ready once that socket is listening, its
// port read from /proc.
func Caddy(t testing.TB, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`# Written by porthole's internal/intermediary for one test.
{
	admin off
	auto_https off
}

http://:0 {
	bind 127.0.0.1
	log
	reverse_proxy %s
}
`, upstream)
	cfgFile := filepath.Join(dir, "Caddyfile")
	writeFile(t, cfgFile, cfg)
	p := start(t, command{
		prog: "caddy",
		pkg:  "caddy",
		args: []string{"run", "--config", cfgFile, "--adapter", "caddyfile"},
		dir:  dir,
		env: []string{
			"HOME=" + dir,
			"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
			"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		},
	})
	addr, err := p.awaitListen(0)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
