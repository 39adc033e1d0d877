//go:build !linux

package netutil

import (
	"net"
	"syscall"
)

// WaitReadable reports ok false: waiting without a buffer is Linux-only here.
func WaitReadable(syscall.Conn) (eof, ok bool, err error) { return false, false, nil }

// WaitQueued reports ok false: waiting without a buffer is Linux-only here.
func WaitQueued(syscall.Conn) (queued int, ok bool, err error) { return 0, false, nil }

// Readiness answers ok false: asking the kernel is Linux-only here.
type Readiness struct{}

// NewReadiness returns a Readiness that cannot tell.
func NewReadiness(net.Conn) *Readiness { return &Readiness{} }

// Readable reports ok false.
func (*Readiness) Readable() (readable, ok bool) { return false, false }
