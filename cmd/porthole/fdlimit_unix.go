//go:build unix

package main

import "syscall"

// openFileLimit returns the process's limit on open files (the soft limit,
// which Go raises to the hard limit at start), or 0 if unknown.
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
