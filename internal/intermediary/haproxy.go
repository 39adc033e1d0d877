package intermediary

import (
	"fmt"
	"path/filepath"
	"testing"
)

// HAProxyOptions says how HAProxy runs. The zero value streams requests
// to the upstream as they come.
type HAProxyOptions struct {
	// BufferRequest sets option http-buffer-request: HAProxy waits for
	// the request's whole body (up to its buffer size) before it picks a
	// server and forwards the request.
	BufferRequest bool
}

// HAProxy runs HAProxy in mode http as a reverse proxy to upstream, the
// host:port of a plain-HTTP server, and returns its address,
// "127.0.0.1:PORT". Its timeouts: connect 5s, client and server 30s,
// tunnel (an upgraded connection) 1h. HAProxy stops when the test ends.
//
// HAProxy takes its listening socket from the test ("bind fd@3") and runs
// in the foreground (-db). It is ready once it says, in verbose mode (-V),
// which polling mechanism it uses: it has read its configuration and set
// up its listener by then, and connections that come sooner wait in the
// socket's backlog. Requests are logged to its output.
func HAProxy(t testing.TB, upstream string, opts HAProxyOptions) string {
	t.Helper()
	buffer := ""
	if opts.BufferRequest {
		buffer = "\n\toption http-buffer-request"
	}
	return serveOnSocket(t, "as the polling mechanism", func(dir, _ string) command {
		cfgFile := filepath.Join(dir, "haproxy.cfg")
		writeFile(t, cfgFile, fmt.Sprintf(`# Written by porthole's internal/intermediary for one test.
global
	log stderr format raw local0 info
	maxconn 1024
defaults
	mode http
	log global
	option httplog
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	timeout tunnel 1h
frontend porthole
	bind fd@3%s
	default_backend upstream
backend upstream
	server upstream %s
`, buffer, upstream))
		return command{prog: "haproxy", pkg: "haproxy", args: []string{"-db", "-V", "-f", cfgFile}}
	})
}
