// Package interop tests porthole's WebSocket carrier against independent
// peers: Python's websockets and Node's ws clients (run as child
// processes from testdata/), and gorilla/websocket from both sides. It has
// no code of its own; its tests are the point.
package interop
