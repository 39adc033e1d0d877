package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// KiB reads a "Name:   123 kB" field from a /proc status-like file, as in
// KiB("/proc/123/status", "VmRSS").
func KiB(file, field string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s", field, file)
}

// CPU returns the CPU time process pid has used, user and system, with that
// of its children it has waited for (socat's forked children, once reaped).
// The resolution is the kernel's USER_HZ, 10ms.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	const userHZ = 100 // USER_HZ, fixed in the Linux ABI for /proc
	var ticks int64
	for _, s := range f[11:15] { // utime stime cutime cstime: fields 14-17
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// CountFDs counts the file descriptors in dir (/proc/PID/fd), and the
// pipes among them.
func CountFDs(dir string) (fds, pipes int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, ent := range ents {
		fds++
		if link, err := os.Readlink(dir + "/" + ent.Name()); err == nil && strings.HasPrefix(link, "pipe:") {
			pipes++
		}
	}
	return fds, pipes
}

// OpenFileLimit returns the soft and hard limits on open files of process
// pid, from /proc/PID/limits ("unlimited" reads as -1).
func OpenFileLimit(pid int) (soft, hard int64, err error) {
	file := fmt.Sprintf("/proc/%d/limits", pid)
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		parse := func(s string) (int64, error) {
			if s == "unlimited" {
				return -1, nil
			}
			return strconv.ParseInt(s, 10, 64)
		}
		if soft, err = parse(f[0]); err == nil {
			hard, err = parse(f[1])
		}
		return soft, hard, err
	}
	return 0, 0, fmt.Errorf("no Max open files in %s", file)
}

// ListeningPort returns the port of the TCP socket process pid listens on,
// polling /proc until it appears, for up to Timeout, or until exited is
// closed.
//
// It is how the port of a program that binds port 0 itself (socat, which
// cannot take a listener from us) is read back from the kernel: the inode
// of its listening socket, found through /proc/PID/fd, looked up in
// /proc/PID/net/tcp. Nothing else can take the port in between, unlike
// picking a free port and handing its number over.
func ListeningPort(pid int, exited <-chan struct{}) (int, error) {
	deadline := time.Now().Add(Timeout)
	for {
		port, err := ListenPort(pid, 0)
		if err != nil || port != 0 {
			return port, err
		}
		select {
		case <-exited:
			return 0, fmt.Errorf("process %d exited before listening; see its messages above", pid)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("process %d did not listen within %v", pid, Timeout)
		}
	}
}

// ListenPort returns the port of a TCP socket process pid listens on, or
// 0 while it has none; want, when nonzero, is the only port that counts.
// The socket is found through the process's own file descriptors, their
// inodes looked up in /proc/PID/net/tcp (a table of the whole network
// namespace).
func ListenPort(pid, want int) (int, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return 0, err
	}
	inodes := make(map[string]bool)
	for _, ent := range ents {
		link, err := os.Readlink(fdDir + "/" + ent.Name())
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	if len(inodes) == 0 {
		return 0, nil
	}
	tab, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0, err
	}
	// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
	for _, line := range strings.Split(string(tab), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return 0, fmt.Errorf("reading /proc/%d/net/tcp: %q: %w", pid, f[1], err)
		}
		if want == 0 || int(port) == want {
			return int(port), nil
		}
	}
	return 0, nil
}

// Children returns the PIDs of process pid's children.
func Children(pid int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		pids = append(pids, n)
	}
	return pids, nil
}
