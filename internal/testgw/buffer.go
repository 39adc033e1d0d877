package testgw

import (
	"strings"
	"sync"
)

// Buffer collects what a logger or a process writes, safe to read while
// other goroutines write to it; Snapshot lets a test wait for the next
// write rather than poll.
type Buffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed at the next write; made by Snapshot when needed
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Snapshot returns everything written so far and a channel closed at the
// next write.
func (b *Buffer) Snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.b.String(), b.changed
}
