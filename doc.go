// Package porthole carries TCP byte streams over HTTP(S): every TCP service
// reachable through one HTTP port.
//
// A porthole gateway (the gateway package, or the "porthole serve" command)
// maps URL paths to services, such as "/echo" to its built-in echo or "/ssh"
// to tcp://127.0.0.1:22. This package is the client side and the in-process
// server side:
//
//   - Dial opens a tunnel to a route's service and returns it as a net.Conn:
//
//     conn, err := porthole.Dial(ctx, "https://gateway.example/ssh", nil)
//
//   - Dialer holds Dial's options: TLS roots, certificate pinning, extra
//     headers, timeouts.
//
//   - Listener is a net.Listener that is also an http.Handler: mount it on
//     a mux and Accept returns the tunnels clients dial to that path.
//
// A tunnel rides a carrier. This version speaks the raw carrier: an HTTP/1.1
// Upgrade to "porthole" answered with 101, after which the connection is the
// stream, over http:// or https://.
package porthole
