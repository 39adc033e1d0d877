// Package web serves the gateway's page at "/": the routes it offers, how
// to connect to each, and browser clients for the built-in services (an
// echo terminal and a chat panel, over WebSocket). The page, its script and
// its style sheet are embedded in the binary; there is no build step.
//
// The gateway hands this package only the path "/" (every other path may
// be a route), so the script and style sheet are served at "/?app.js" and
// "/?style.css".
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net"
	"net/http"
	"regexp"
	"time"
)

//go:embed index.html app.js style.css
var files embed.FS

var index = template.Must(template.ParseFS(files, "index.html"))

// asset is a file the page loads, served at "/?NAME".
type asset struct {
	name, contentType, etag string
	body                    []byte
}

var assets = map[string]*asset{
	"app.js":    load("app.js", "text/javascript; charset=utf-8"),
	"style.css": load("style.css", "text/css; charset=utf-8"),
}

func load(name, contentType string) *asset {
	body, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded above; cannot happen
	}
	sum := sha256.Sum256(body)
	return &asset{name, contentType, `"` + hex.EncodeToString(sum[:8]) + `"`, body}
}

// Route is what the page shows of one route.
type Route struct {
	Path   string // URL path, such as "/echo"
	Target string // the service, such as "echo", "chat" or "tcp://127.0.0.1:22"
	Bare   bool   // whether the bare form is on
	Token  bool   // whether the route asks for a bearer token
}

// Index returns the handler for the page listing routes, and for the
// files it loads. Routes whose target is "echo" or "chat" get a browser
// client on the page.
func Index(routes []Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the page at / only answers GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if a, ok := assets[r.URL.RawQuery]; ok {
			w.Header().Set("Content-Type", a.contentType)
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("ETag", a.etag)
			http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
			return
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		host, port := splitHostPort(r.Host)
		var buf bytes.Buffer
		err := index.Execute(&buf, struct {
			Base, Host, Port string
			TLS              bool
			Routes           []Route
		}{scheme + "://" + r.Host, host, port, r.TLS != nil, routes})
		if err != nil {
			http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", policy(r))
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Write(buf.Bytes())
	})
}

// plainHost matches a Host header that can go into a policy as it is.
var plainHost = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)

// policy is the page's Content-Security-Policy: its own script and style
// sheet only, and WebSocket connections to this gateway. 'self' covers
// ws: and wss: only in newer browsers, so the gateway's ws:// or wss://
// origin is listed too.
func policy(r *http.Request) string {
	connect := "'self'"
	if plainHost.MatchString(r.Host) {
		if r.TLS != nil {
			connect += " wss://" + r.Host
		} else {
			connect += " ws://" + r.Host
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src " + connect +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

func splitHostPort(hostport string) (host, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, "80"
	}
	return host, port
}
