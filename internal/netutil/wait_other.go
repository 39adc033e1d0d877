//go:build !linux

package netutil

import (
	"net"
	"syscall"
)

// WaitQueued reports ok false: waiting without a buffer is Linux-only here.
func WaitQueued(syscall.Conn) (queued int, ok bool, err error) { return 0, false, nil }

// Queued reports ok false: asking the kernel is Linux-only here.
func Queued(net.Conn) (queued int, ok bool) { return 0, false }
