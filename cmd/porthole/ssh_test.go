//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// A real ssh client reaches a real sshd through porthole connect as its
// ProxyCommand and a gateway route to the sshd's port.
//
// sshd cannot listen on port 0 (it rejects the port number), so the test
// listens on a loopback port the kernel picks and hands the connection the
// gateway makes to "sshd -i", sshd's inetd mode, which serves one
// connection on its standard input and output, with the same configuration
// and checks as a listening sshd.
func TestSSHProxyCommand(t *testing.T) {
	t.Parallel()
	sshd := lookPath("sshd", "/usr/sbin/sshd")
	ssh, keygen := lookPath("ssh"), lookPath("ssh-keygen")
	if sshd == "" || ssh == "" || keygen == "" {
		t.Skip("ssh, sshd or ssh-keygen not found: install openssh-client and openssh-server (.ci/run does)")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// sshd refuses to run without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd needs /run/sshd: %v", err)
	}

	dir := t.TempDir()
	hostKey, userKey := filepath.Join(dir, "host_key"), filepath.Join(dir, "user_key")
	for _, k := range []string{hostKey, userKey} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "porthole-test", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(userKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := writeFile(t, dir, "authorized_keys", string(pub))
	config := writeFile(t, dir, "sshd_config", fmt.Sprintf(`HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
`, hostKey, authorized))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c.(*net.TCPConn)
		}
	}()

	g := startServe(t, "-listen", "127.0.0.1:0", "-route", "/ssh=tcp://"+ln.Addr().String())
	sshCmd := exec.Command(ssh,
		"-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "ProxyCommand="+bin+" connect "+g.url+"/ssh",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "LogLevel=ERROR",
		"-i", userKey,
		"-p", "22",
		u.Username+"@anything",
		"echo", "hello-through-porthole",
	)
	sshCmd.Env = portholeCmd().Env // for the ProxyCommand
	client := startCmd(t, sshCmd)

	var conn *net.TCPConn
	select {
	case conn = <-accepted:
	case <-client.done:
		t.Fatalf("ssh exited %d before the gateway reached the sshd port; stderr:\n%s", client.cmd.ProcessState.ExitCode(), client.stderr.String())
	case <-time.After(patience):
		t.Fatalf("the gateway did not reach the sshd port within %v", patience)
	}
	f, err := conn.File()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	server := exec.Command(sshd, "-i", "-e", "-f", config)
	server.Stdin, server.Stdout = f, f
	daemon := startCmd(t, server)
	f.Close()

	if code := client.wait(); code != 0 {
		t.Fatalf("ssh exited %d; stderr:\n%s\nsshd stderr:\n%s", code, client.stderr.String(), daemon.stderr.String())
	}
	if got := client.stdout.String(); got != "hello-through-porthole\n" {
		t.Errorf("ssh printed %q, want %q", got, "hello-through-porthole\n")
	}
	daemon.waitLog(regexp.MustCompile(`Accepted publickey for ` + regexp.QuoteMeta(u.Username) + ` from 127\.0\.0\.1`))
	daemon.wait()
	g.waitLog(regexp.MustCompile(`msg="tunnel closed" route=/ssh`))
}

// lookPath finds a program in PATH, or else at one of the given paths.
func lookPath(name string, also ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range also {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
