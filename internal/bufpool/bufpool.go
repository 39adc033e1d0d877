// Package bufpool lends the byte buffers porthole moves a tunnel's bytes
// through, in two sizes, so that a connection holds one only while bytes
// move (an idle tunnel holds none), and the carriers and the deadline
// guard lend from the same pools.
//
// A transfer reads into a Small buffer first; once a read fills one, the
// bytes come in bulk, and the next read goes into a Large one (Next): a
// bulk transfer takes few large reads and writes, while many tunnels that
// each move a little hold a little each.
package bufpool

import (
	"fmt"
	"sync"
)

// The buffer sizes.
const (
	Small = 32 << 10  // as io.Copy's
	Large = 256 << 10 // a bulk transfer's
)

var (
	small = sync.Pool{New: func() any { b := make([]byte, Small); return &b }}
	large = sync.Pool{New: func() any { b := make([]byte, Large); return &b }}
)

// Get lends a buffer of size bytes, Small or Large.
func Get(size int) *[]byte {
	switch size {
	case Small:
		return small.Get().(*[]byte)
	case Large:
		return large.Get().(*[]byte)
	}
	panic(fmt.Sprintf("bufpool: no buffers of %d bytes, only of Small or Large", size))
}

// Put returns a buffer Get lent.
func Put(bp *[]byte) {
	if len(*bp) == Large {
		large.Put(bp)
		return
	}
	small.Put(bp)
}

// Next returns the size of the buffer for the read that follows one of n
// bytes into a buffer of size bytes: Large after a read that filled its
// buffer, else Small.
func Next(n, size int) int {
	if n == size {
		return Large
	}
	return Small
}
