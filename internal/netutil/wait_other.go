//go:build !linux

package netutil

import (
	"net"
	"syscall"
)

// WaitQueued reports ok false: waiting without a buffer is Linux-only here.
func WaitQueued(syscall.Conn) (queued int, ok bool, err error) { return 0, false, nil }

// Readable reports ok false: asking the kernel is Linux-only here.
func Readable(net.Conn) (readable, ok bool) { return false, false }
