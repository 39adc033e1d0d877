// Package web serves the gateway's page at "/": the routes it offers and how
// to connect to each. The page is embedded in the binary; there is no build
// step.
package web

import (
	"bytes"
	"embed"
	"html/template"
	"net"
	"net/http"
)

//go:embed index.html
var files embed.FS

var index = template.Must(template.ParseFS(files, "index.html"))

// Route is what the page shows of one route.
type Route struct {
	Path   string // URL path, such as "/echo"
	Target string // the service, such as "echo" or "tcp://127.0.0.1:22"
	Bare   bool   // whether the bare form is on
}

// Index returns the handler for the page listing routes.
func Index(routes []Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the page at / only answers GET", http.StatusMethodNotAllowed)
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
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(buf.Bytes())
	})
}

func splitHostPort(hostport string) (host, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, "80"
	}
	return host, port
}
