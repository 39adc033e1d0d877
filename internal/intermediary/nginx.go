package intermediary

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// NginxConf picks the configuration Nginx runs with.
type NginxConf int

const (
	// NginxDefault is proxy_pass alone, so nginx's defaults hold: it asks
	// the upstream in HTTP/1.0 with Connection: close, drops the
	// hop-by-hop headers Upgrade and Connection, and buffers request and
	// response bodies (proxy_request_buffering and proxy_buffering on).
	NginxDefault NginxConf = iota
	// NginxWebSocket is the configuration nginx's documentation gives for
	// WebSocket proxying, which passes any Upgrade: HTTP/1.1 to the
	// upstream, the client's Upgrade header, Connection: upgrade when
	// there is one (close otherwise, through a map), Host: $host, and
	// proxy_read_timeout 1h so an idle tunnel stays up.
	NginxWebSocket
	// NginxShortTimeout is NginxWebSocket with proxy_read_timeout and
	// proxy_send_timeout 5s: nginx closes an upgraded connection that
	// carries nothing for 5 seconds, as a proxy tuned for short requests
	// does.
	NginxShortTimeout
	// NginxGetPost is NginxDefault that refuses every method but GET,
	// HEAD and POST with 403 (limit_except), as locked-down proxies do.
	NginxGetPost
)

// String returns the configuration's name, for subtest names.
func (c NginxConf) String() string {
	switch c {
	case NginxDefault:
		return "default"
	case NginxWebSocket:
		return "websocket"
	case NginxShortTimeout:
		return "short-timeout"
	case NginxGetPost:
		return "get-post-only"
	}
	return fmt.Sprintf("NginxConf(%d)", int(c))
}

// locationConf returns the directives inside location / besides
// proxy_pass.
func (c NginxConf) locationConf() string {
	const webSocket = `
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Host $host;`
	switch c {
	case NginxDefault:
		return ""
	case NginxWebSocket:
		return webSocket + `
			proxy_read_timeout 1h;`
	case NginxShortTimeout:
		return webSocket + `
			proxy_read_timeout 5s;
			proxy_send_timeout 5s;`
	case NginxGetPost:
		return `
			limit_except GET POST { deny all; }`
	}
	panic("intermediary: unknown " + c.String())
}

// Nginx runs nginx as a reverse proxy to upstream, the host:port of a
// plain-HTTP server, with configuration conf, and returns its address,
// "127.0.0.1:PORT". nginx stops when the test ends.
//
// nginx takes its listening socket from the test, the way its binary
// upgrade hands sockets to a new binary: the socket is inherited as file
// descriptor 3 and named in the NGINX environment variable. With
// master_process off, Debian's nginx 1.22 crashes on an inherited socket
// (SIGSEGV: in single-process mode ngx_event_process_init dereferences the
// inherited listener's previous connection, which is NULL), so nginx runs
// as a master with one worker, in the foreground (daemon off). It is
// ready once the master logs that it started the worker; connections that
// come sooner wait in the socket's backlog.
//
// The master stops on SIGTERM, at cleanup and as its parent-death signal,
// rather than SIGKILL: a killed master leaves its worker running, still
// serving on the inherited socket, and only the master stops the worker.
func Nginx(t testing.TB, upstream string, conf NginxConf) string {
	t.Helper()
	// As root, nginx runs its worker as "nobody" unless told otherwise, and
	// nobody cannot reach t.TempDir() (its parent's mode is 0700) to keep
	// request bodies there. As any other user the directive is ignored with a warning, so
	// it is left out.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	connUpgrade := ""
	if conf != NginxDefault {
		connUpgrade = `
	map $http_upgrade $connection_upgrade {
		default upgrade;
		''      close;
	}`
	}
	return serveOnSocket(t, "start worker process", func(dir, addr string) command {
		// Relative paths are below the prefix, -p dir.
		cfgFile := filepath.Join(dir, "nginx.conf")
		writeFile(t, cfgFile, fmt.Sprintf(`# Written by porthole's internal/intermediary for one test (%s configuration).
daemon off;
master_process on;
worker_processes 1;
%s
pid nginx.pid;
error_log stderr notice;
events {
	worker_connections 1024;
}
http {
	access_log /dev/stderr;
	client_body_temp_path client_body_temp;
	proxy_temp_path proxy_temp;
	fastcgi_temp_path fastcgi_temp;
	uwsgi_temp_path uwsgi_temp;
	scgi_temp_path scgi_temp;%s
	server {
		listen %s;
		location / {
			proxy_pass http://%s;%s
		}
	}
}
`, conf, user, connUpgrade, addr, upstream, conf.locationConf()))
		return command{
			prog: "nginx",
			pkg:  "nginx",
			args: []string{"-p", dir + "/", "-c", cfgFile, "-e", "stderr"},
			env:  []string{"NGINX=3;"},
			stop: syscall.SIGTERM,
		}
	})
}
