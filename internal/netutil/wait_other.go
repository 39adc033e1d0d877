//go:build !linux

package netutil

import "syscall"

// WaitQueued reports ok false: waiting without a buffer is Linux-only here.
func WaitQueued(syscall.Conn) (queued int, ok bool, err error) { return 0, false, nil }
