// Package proxymatrix proves porthole tunnels through real intermediaries:
// its test starts nginx, HAProxy, caddy, squid, tinyproxy and mitmproxy
// (package intermediary) in front of a gateway, or between the client and
// it, dials each with the automatic carrier choice, and checks that the
// tunnel carries 16 MiB, survives 10 seconds idle, and carries more. The
// table it logs is docs/proxies.md's.
package proxymatrix
