package websocket

import (
	"sync"

	"github.com/porthole/porthole/internal/bufpool"
)

// MaxMessageSent is the largest message the carrier sends: a Write of more
// goes out as several messages. A gateway's message limit
// (gateway.Options.MaxMessageBytes) below it cuts off porthole's clients.
// It is the relay's large copy buffer (bufpool.Large), so that a bulk
// transfer's read is one message.
const MaxMessageSent = bufpool.Large

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
