package intermediary

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// MitmOptions says how mitmproxy runs. The zero value resolves names as
// the system does.
type MitmOptions struct {
	// Hosts maps host names to the IP addresses mitmproxy connects to in
	// their place, so a test can name its target, "gw.porthole.test" say,
	// and reach 127.0.0.1. The CONNECT, Host and TLS server name keep the
	// name. (mitmproxy has no hosts file; a small addon script sets the
	// server address.)
	Hosts map[string]string
}

// Mitmproxy runs mitmproxy (mitmdump) as a forward proxy, regular mode,
// that intercepts TLS: a client's CONNECT tunnel is answered with a
// certificate for the requested name that mitmproxy issues from its own
// CA, and mitmproxy opens its own TLS connection to the target, without
// verifying the target's certificate (ssl_insecure), since test servers
// have self-signed ones. It returns the proxy's address,
// "127.0.0.1:PORT", and the CA certificate (PEM) a client must trust.
// Flows are logged to its output. mitmproxy stops when the test ends.
//
// mitmproxy keeps its state (confdir, where it generates the CA, and
// HOME) in the test's temporary directory. It binds port 0 on 127.0.0.1
// itself and is ready once that socket is listening, its port read from
// /proc.
func Mitmproxy(t testing.TB, opts MitmOptions) (addr string, caPEM []byte) {
	t.Helper()
	dir := t.TempDir()
	confDir := filepath.Join(dir, "conf")
	args := []string{
		"--listen-host", "127.0.0.1",
		"--listen-port", "0",
		"--set", "confdir=" + confDir,
		"--set", "ssl_insecure=true",
	}
	if len(opts.Hosts) > 0 {
		hosts, err := json.Marshal(opts.Hosts) // a JSON object of strings is a Python dict
		if err != nil {
			t.Fatal(err)
		}
		script := filepath.Join(dir, "hosts.py")
		writeFile(t, script, fmt.Sprintf(`# Written by porthole's internal/intermediary for one test:
# connect to these addresses in place of the names.
HOSTS = %s


def server_connect(data):
    host, port = data.server.address
    if host in HOSTS:
        data.server.address = (HOSTS[host], port)
`, hosts))
		args = append(args, "-s", script)
	}
	p := start(t, command{
		prog: "mitmdump",
		pkg:  "mitmproxy",
		args: args,
		dir:  dir,
		env:  []string{"HOME=" + dir, "PYTHONUNBUFFERED=1"},
	})
	addr, err := p.awaitListen(0)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err = os.ReadFile(filepath.Join(confDir, "mitmproxy-ca-cert.pem"))
	if err != nil {
		t.Fatalf("%s: its CA certificate: %v", p.name, err)
	}
	return addr, caPEM
}
