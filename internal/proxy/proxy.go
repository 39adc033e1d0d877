// Package proxy takes porthole's client through HTTP forward proxies.
//
// A Func picks the proxy for a gateway URL: FromEnvironment reads
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY, Fixed serves an explicit -proxy
// URL (Parse reads one). The client then opens a TCP connection to Addr of
// the proxy, does TLS with the proxy itself when its scheme is https, and:
//
//   - for an https:// or wss:// gateway, calls Connect, which asks the proxy
//     for a tunnel with CONNECT, and does the gateway's TLS handshake over
//     the connection Connect returns;
//   - for an http:// or ws:// gateway, sends its requests to the proxy in
//     absolute form ("GET http://gateway/path HTTP/1.1") with the
//     Proxy-Authorization header that Authorization returns.
//
// A proxy's refusal is an *Error, distinct from a gateway's
// *carrier.StatusError. No error here contains a proxy's password.
package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpproxy"
)

// Func picks the proxy for a gateway URL (http, https, ws or wss): the
// proxy's URL, or nil to connect directly.
type Func func(target *url.URL) (*url.URL, error)

// FromEnvironment returns the Func that HTTPS_PROXY, HTTP_PROXY and
// NO_PROXY describe, or their lower-case forms, read now, at the call:
// later changes to the environment do not apply. A lower-case variable
// wins over its upper-case form when both are set (as in curl and Go's
// net/http). wss:// gateways use the https proxy and ws:// ones the http
// proxy. A value without a scheme, as in "proxy.example:3128", means
// http://.
//
// As in Go's net/http, a gateway named "localhost" or by a loopback IP
// address is never proxied, whatever the variables say; a test that needs
// the proxy must name the gateway by a host name that only the proxy
// resolves, such as gw.porthole.test.
//
// The Func returns an error, for the gateways the variable would apply
// to, when HTTPS_PROXY or HTTP_PROXY is not a valid http:// or https://
// proxy URL (net/http ignores such a value and connects directly), and
// for http:// gateways in a CGI environment (REQUEST_METHOD set), where
// HTTP_PROXY may come from the client's Proxy header.
func FromEnvironment() Func {
	cfg := httpproxy.FromEnvironment()
	httpErr := envError("HTTP_PROXY", cfg.HTTPProxy)
	httpsErr := envError("HTTPS_PROXY", cfg.HTTPSProxy)
	pick := cfg.ProxyFunc()
	return func(target *url.URL) (*url.URL, error) {
		t := *target
		switch t.Scheme {
		case "ws", "http":
			t.Scheme = "http"
			if httpErr != nil {
				return nil, httpErr
			}
		case "wss", "https":
			t.Scheme = "https"
			if httpsErr != nil {
				return nil, httpsErr
			}
		}
		return pick(&t)
	}
}

// envError reports a proxy variable whose value porthole cannot use.
func envError(name, value string) error {
	if _, err := Parse(value); err != nil {
		return fmt.Errorf("%s (or its lower-case form): %w", name, err)
	}
	return nil
}

// Fixed returns the Func that sends every gateway through proxy, for an
// explicit -proxy flag; a nil proxy means always direct.
func Fixed(proxy *url.URL) Func {
	return func(*url.URL) (*url.URL, error) { return proxy, nil }
}

// errScheme is wrapped by the errors for proxies of other kinds.
var errScheme = errors.New("only http:// and https:// proxies are supported")

// Parse reads a proxy URL as given to a -proxy flag or in HTTPS_PROXY:
// "http://[user:pass@]host[:port]", "https://...", or "host:port" for
// http://. An empty s means no proxy: nil, nil. The error never contains
// the password.
func Parse(s string) (*url.URL, error) {
	if s == "" {
		return nil, nil
	}
	u, err := url.Parse(s)
	if (err != nil || u.Scheme == "" || u.Host == "") && !strings.Contains(s, "://") {
		// "host:port" parses as scheme "host"; read it as net/http does.
		if u2, err2 := url.Parse("http://" + s); err2 == nil {
			u, err = u2, nil
		}
	}
	if err != nil {
		// url.Parse's error quotes s, password and all.
		return nil, errors.New("invalid proxy URL: give it as http://[user:pass@]host:port")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("proxy URL %s: %w", u.Redacted(), errScheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("proxy URL %s has no host: give it as http://[user:pass@]host:port", u.Redacted())
	}
	return u, nil
}

// Addr returns the host:port to dial for proxy: its port, or 443 for an
// https:// proxy and 80 for an http:// one when it names none (as Go's
// net/http does; curl assumes 1080).
func Addr(proxy *url.URL) string {
	if port := proxy.Port(); port != "" {
		return net.JoinHostPort(proxy.Hostname(), port)
	}
	port := "80"
	if proxy.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(proxy.Hostname(), port)
}
