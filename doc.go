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
//     headers, timeouts, the carrier, an HTTP proxy.
//
//   - Listener is a net.Listener that is also an http.Handler: mount it on
//     a mux and Accept returns the tunnels clients dial to that path.
//
// A tunnel rides a carrier, over http:// or https:// alike:
//
//   - raw: an HTTP/1.1 Upgrade to "porthole" answered with 101, after which
//     the connection is the stream;
//   - websocket: RFC 6455, the stream in binary messages (ws:// and wss://
//     URLs mean this one);
//   - poll: plain requests, for intermediaries that pass no upgrade
//     (package carrier/poll).
//
// # Automatic carrier choice
//
// With Dialer.Carrier empty or "auto", Dial tries raw, then websocket, then
// poll, each within a few seconds, and falls back at once when the answer
// shows the carrier cannot pass: the gateway's 426 because an intermediary
// removed Upgrade, an intermediary's refusal, a handshake cut on the way.
// It stops at once on what every carrier would meet: nothing listening, a
// TLS failure (it never retries less safely), an unknown route, a dead
// service. A raw tunnel that the gateway sees arrive through an
// intermediary is passed over for one with keep-alives, which the
// intermediary's idle timeout cannot cut silently. The carrier that worked
// is remembered for the gateway for the life of the process, and tried
// first next time. Dialer.Logger hears why each carrier failed.
package porthole
