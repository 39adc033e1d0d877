package intermediary

import (
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// SquidOptions says how Squid runs. The zero value keeps Debian's stock
// access rules: clients on localhost may use it, and CONNECT goes to port
// 443 only.
type SquidOptions struct {
	// ConnectAnyPort allows CONNECT to any port. Without it Debian's rule
	// "http_access deny CONNECT !SSL_ports" stays, and Squid answers a
	// CONNECT to any other port than 443 with 403 Forbidden.
	ConnectAnyPort bool
	// Hosts maps host names to IP addresses, added to a copy of
	// /etc/hosts that Squid reads as its hosts_file, so a test can name
	// its target, "gw.porthole.test" say, and reach 127.0.0.1. Empty
	// means /etc/hosts as it is.
	Hosts map[string]string
}

// squidServices counts the Squids started, for their service names.
var squidServices atomic.Int64

// Squid runs Squid as a forward proxy and returns its address,
// "127.0.0.1:PORT". It caches nothing (cache deny all), keeps its logs
// (cache.log, access.log) in the test's temporary directory, shown when
// the test fails, and stops when the test ends.
//
// Squid runs in the foreground (-N) with one process (no pinger helper).
// It refuses port 0 and cannot inherit a socket, so it is given a port
// that was free (see onFreePort) and is ready once it listens there.
// Squid 5 keeps shared memory segments in /dev/shm, named after its
// service name, even with a single worker; each Squid here has its own
// name (-n), so that several can run at once. At cleanup it is killed
// and its segments removed after it: Squid takes 2 seconds to stop on
// SIGTERM, even with shutdown_lifetime 0. Its parent-death signal is
// SIGTERM, so that, should the test process die, it removes them itself.
//
// Squid refuses to run as root ("Don't run Squid as root, set
// 'cache_effective_user'"). Rather than switch users itself, which would
// drop its parent-death signal, it is started as the user proxy (Debian's
// user for it) when the test runs as root: the temporary directory is
// given to proxy and its parent, testing's own directory (mode 0700), is
// opened for traversal (0711). That needs every directory above, up to
// TMPDIR, to be reachable by proxy, as /tmp is.
func Squid(t testing.TB, opts SquidOptions) string {
	t.Helper()
	dir := t.TempDir()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = handOver(t, dir, "proxy")
	}
	var hostsFile, connectRule string
	if len(opts.Hosts) > 0 {
		hostsFile = "hosts_file " + writeHosts(t, dir, opts.Hosts)
	}
	if !opts.ConnectAnyPort {
		connectRule = "http_access deny CONNECT !SSL_ports"
	}
	cacheLog, accessLog := filepath.Join(dir, "cache.log"), filepath.Join(dir, "access.log")
	return onFreePort(t, "Address already in use", func(port int) *process {
		service := fmt.Sprintf("porthole%dn%d", os.Getpid(), squidServices.Add(1))
		// The access rules are Debian's /etc/squid/squid.conf, so a test
		// meets what a stock Squid does.
		cfg := fmt.Sprintf(`# Written by porthole's internal/intermediary for one test.
acl SSL_ports port 443
acl Safe_ports port 80 21 443 70 210 1025-65535 280 488 591 777
http_access deny !Safe_ports
%s
http_access allow localhost manager
http_access deny manager
http_access allow localhost
http_access deny all
http_port 127.0.0.1:%d
%s
cache deny all
pinger_enable off
icp_port 0
htcp_port 0
visible_hostname porthole-test
pid_filename none
cache_log %s
access_log stdio:%s
logfile_rotate 0
coredump_dir %s
shutdown_lifetime 0 seconds
`, connectRule, port, hostsFile, cacheLog, accessLog, dir)
		cfgFile := filepath.Join(dir, "squid.conf")
		writeFile(t, cfgFile, cfg)
		p := start(t, command{
			prog: "squid",
			pkg:  "squid",
			args: []string{"-N", "-n", service, "-f", cfgFile},
			dir:  dir,
			cred: cred,
			// See the doc comment for why not SIGKILL.
			parentDeath: syscall.SIGTERM,
			logs:        []string{cacheLog, accessLog},
		})
		p.afterExit = func() {
			segs, _ := filepath.Glob("/dev/shm/" + service + "-*")
			for _, seg := range segs {
				os.Remove(seg)
			}
		}
		return p
	})
}

// handOver gives dir to the user named name, opens its parent for
// traversal, and returns the credential to run a program as that user.
func handOver(t testing.TB, dir, name string) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s, to run the program as instead of root: %v", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("user %s: uid %q, gid %q", name, u.Uid, u.Gid)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// writeHosts writes /etc/hosts and a line for each of hosts (name → IP
// address) to a file in dir, and returns its name.
func writeHosts(t testing.TB, dir string, hosts map[string]string) string {
	t.Helper()
	var b strings.Builder
	if etc, err := os.ReadFile("/etc/hosts"); err == nil {
		b.Write(etc)
		b.WriteString("\n")
	}
	for _, name := range slices.Sorted(maps.Keys(hosts)) {
		fmt.Fprintf(&b, "%s %s\n", hosts[name], name)
	}
	name := filepath.Join(dir, "hosts")
	writeFile(t, name, b.String())
	return name
}
