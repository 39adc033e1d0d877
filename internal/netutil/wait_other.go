//go:build !linux

package netutil

import (
	"net"
	"syscall"
)

// A Waiter waits for a socket's bytes holding no buffer: Linux-only here.
type Waiter struct{}

// NewWaiter reports ok false: waiting without a buffer is Linux-only here.
func NewWaiter(syscall.Conn) (w *Waiter, ok bool) { return nil, false }

// Readable is never called: NewWaiter makes no Waiter.
func (*Waiter) Readable() (eof bool, err error) { return false, nil }

// Queued is never called: NewWaiter makes no Waiter.
func (*Waiter) Queued() (int, error) { return 0, nil }

// Readiness answers ok false: asking the kernel is Linux-only here.
type Readiness struct{}

// NewReadiness returns a Readiness that cannot tell.
func NewReadiness(net.Conn) *Readiness { return &Readiness{} }

// Readable reports ok false.
func (*Readiness) Readable() (readable, ok bool) { return false, false }

// readNow cannot tell whether bytes are waiting: Linux-only here, so a
// HandOff's connection hands off before every Read that could wait.
type readNow struct{}

func (*readNow) init(net.Conn) {}

func (*readNow) read(net.Conn, []byte) (n int, ok bool, err error) { return 0, false, nil }
