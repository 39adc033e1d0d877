package websocket

import "sync"

// MaxMessageSent is the largest message the carrier sends: a Write of more
// goes out as several messages. A gateway's message limit
// (gateway.Options.MaxMessageBytes) below it cuts off porthole's clients.
const MaxMessageSent = largeBuffer

// The relay's copy buffers. They are lent only while bytes move, so an
// idle tunnel holds none. A transfer starts with a small one and moves to
// a large one once it has filled the small one: a bulk transfer then takes
// a few large reads and writes (see "WebSocket throughput" in
// docs/benchmarks.md), while many tunnels that each move a little hold a
// little each.
const (
	smallBuffer = 32 << 10
	largeBuffer = 256 << 10
)

var (
	smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallBuffer); return &b }}
	largeBuffers = sync.Pool{New: func() any { b := make([]byte, largeBuffer); return &b }}
)

// getBuffer lends a copy buffer of size smallBuffer or largeBuffer.
func getBuffer(size int) *[]byte {
	if size == largeBuffer {
		return largeBuffers.Get().(*[]byte)
	}
	return smallBuffers.Get().(*[]byte)
}

// putBuffer returns a buffer getBuffer lent.
func putBuffer(bp *[]byte) {
	if len(*bp) == largeBuffer {
		largeBuffers.Put(bp)
		return
	}
	smallBuffers.Put(bp)
}

// gorilla's write buffers, lent only while a message is being written, so
// an idle tunnel holds none; gorilla wants a pool per buffer size.
var (
	// writeBuffers are the gateway's: a message's frame head and its
	// first 32 KiB go through one, the rest straight from the relay's
	// buffer, in the same writev.
	writeBuffers sync.Pool
	// clientWriteBuffers are the client's. Each holds a whole message, so
	// that it goes out as one frame: the gateway then reads a frame head
	// per message, not per 32 KiB.
	clientWriteBuffers sync.Pool
)
