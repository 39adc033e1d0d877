package intermediary

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TinyproxyOptions says how Tinyproxy runs. The zero value asks for no
// credentials and allows CONNECT to ports 443 and 563 only.
type TinyproxyOptions struct {
	// BasicAuth, "user:password", makes Tinyproxy require those
	// credentials (Proxy-Authorization: Basic) and answer a request
	// without them 407 Proxy Authentication Required. Empty means no
	// authentication.
	BasicAuth string
	// ConnectAnyPort allows CONNECT to any port. Without it CONNECT may
	// reach ports 443 and 563 only (ConnectPort, as Tinyproxy's sample
	// configuration has it), and Tinyproxy refuses the rest. Debian's
	// tinyproxy.conf comments those lines out, which allows every port:
	// ConnectAnyPort is what a stock Debian Tinyproxy does.
	ConnectAnyPort bool
}

// Tinyproxy runs Tinyproxy as a forward proxy for clients on 127.0.0.1
// and returns its address, "127.0.0.1:PORT". It logs to its output (Info
// level) and stops when the test ends.
//
// Tinyproxy runs in the foreground (-d). It refuses port 0 and cannot
// inherit a socket, so it is given a port that was free (see onFreePort)
// and is ready once it listens there. No User is set: as root it warns
// and stays root, which keeps its parent-death signal and lets it read
// its configuration in t.TempDir().
func Tinyproxy(t testing.TB, opts TinyproxyOptions) string {
	t.Helper()
	dir := t.TempDir()
	var extra strings.Builder
	if opts.BasicAuth != "" {
		name, password, ok := strings.Cut(opts.BasicAuth, ":")
		if !ok || name == "" || strings.ContainsAny(opts.BasicAuth, " \t\n") {
			t.Fatalf("Tinyproxy: BasicAuth %q is not user:password (no spaces)", opts.BasicAuth)
		}
		fmt.Fprintf(&extra, "BasicAuth %s %s\n", name, password)
	}
	if !opts.ConnectAnyPort {
		extra.WriteString("ConnectPort 443\nConnectPort 563\n")
	}
	return onFreePort(t, "Could not create listening sockets", func(port int) *process {
		cfg := fmt.Sprintf(`# Written by porthole's internal/intermediary for one test.
Port %d
Listen 127.0.0.1
Timeout 600
MaxClients 100
LogLevel Info
Allow 127.0.0.1
%s`, port, extra.String())
		cfgFile := filepath.Join(dir, "tinyproxy.conf")
		writeFile(t, cfgFile, cfg)
		return start(t, command{
			prog: "tinyproxy",
			pkg:  "tinyproxy",
			args: []string{"-d", "-c", cfgFile},
			dir:  dir,
		})
	})
}
