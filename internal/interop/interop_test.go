package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// streamBytes is what each peer moves through the echo: 16 MiB each way.
const streamBytes = 16 << 20

// peerLimit bounds one peer's run, install included.
const peerLimit = 3 * time.Minute

// startEcho runs a gateway whose /echo route is the built-in echo.
func startEcho(t *testing.T) *testgw.Gateway {
	return testgw.Start(t, gateway.Options{Routes: []gateway.Route{{Path: "/echo", Service: service.Echo{}}}})
}

// wsURLs returns the gateway's echo as ws:// and wss:// URLs, and a PEM
// file with the certificate that wss:// needs trusted.
func wsURLs(t *testing.T, gw *testgw.Gateway) (ws, wss, caFile string) {
	caFile = filepath.Join(t.TempDir(), "gateway.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gw.Cert.Leaf.Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return "ws://" + gw.Addr(false) + "/echo", "wss://" + gw.Addr(true) + "/echo", caFile
}

// peerReport is the JSON line a peer script prints.
type peerReport struct {
	Sent           int64  `json:"sent"`
	SentSHA256     string `json:"sent_sha256"`
	Received       int64  `json:"received"`
	ReceivedSHA256 string `json:"received_sha256"`
	Subprotocol    string `json:"subprotocol"`
	Extensions     string `json:"extensions"`
	CloseCode      int    `json:"close_code"`
	CloseReason    string `json:"close_reason"`
}

// check fails the test unless the peer sent streamBytes, got the same
// bytes back (by SHA-256), spoke "binary" without extensions, and saw the
// gateway's Close 1000 after the echo's end.
func (r peerReport) check(t *testing.T) {
	t.Helper()
	if r.Sent != streamBytes || r.Received != r.Sent || r.ReceivedSHA256 != r.SentSHA256 {
		t.Errorf("sent %d bytes (SHA-256 %s), received %d (SHA-256 %s); want %d both ways, equal", r.Sent, r.SentSHA256, r.Received, r.ReceivedSHA256, streamBytes)
	}
	if r.Subprotocol != "binary" {
		t.Errorf("subprotocol = %q, want binary", r.Subprotocol)
	}
	if r.Extensions != "" {
		t.Errorf("extensions in effect: %q, want none (the gateway declines them)", r.Extensions)
	}
	if r.CloseCode != 1000 {
		t.Errorf("the peer saw Close %d %q, want 1000", r.CloseCode, r.CloseReason)
	}
}

// runPeer runs a peer script to the end within peerLimit and parses its
// report.
func runPeer(t *testing.T, dir, name string, args ...string) peerReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	var r peerReport
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
		t.Fatalf("%s printed %q, not a report: %v\nstderr: %s", name, stdout.Bytes(), err, stderr.Bytes())
	}
	t.Logf("%s: %d bytes each way in %v, Close %d %q", filepath.Base(args[0]), r.Sent, time.Since(start).Round(time.Millisecond), r.CloseCode, r.CloseReason)
	return r
}

// python returns a Python 3 interpreter that has the websockets module,
// or skips the test.
func python(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import websockets").Run() == nil {
			return path
		}
	}
	t.Skip("no python3 with the websockets module: apt-get install python3-websockets")
	return ""
}

// TestPythonWebsockets: Python's websockets client streams 16 MiB through
// the echo, over ws:// and wss://.
func TestPythonWebsockets(t *testing.T) {
	py := python(t)
	script, err := filepath.Abs("testdata/client.py")
	if err != nil {
		t.Fatal(err)
	}
	gw := startEcho(t)
	ws, wss, ca := wsURLs(t, gw)
	t.Run("ws", func(t *testing.T) {
		runPeer(t, ".", py, script, ws, strconv.Itoa(streamBytes)).check(t)
	})
	t.Run("wss", func(t *testing.T) {
		runPeer(t, ".", py, script, wss, strconv.Itoa(streamBytes), ca).check(t)
	})
}

// nodeClient installs the Node client with its locked dependencies (npm
// ci) into a temporary directory and returns that directory, or skips the
// test when node or npm is absent.
func nodeClient(t *testing.T) string {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		t.Skip("node or npm is absent: apt-get install nodejs npm")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "client.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "node", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci for the Node client (with %s): %v\n%s", node, err, out)
	}
	return dir
}

// TestNodeWS: Node's ws client streams 16 MiB through the echo, over
// ws:// and wss://.
func TestNodeWS(t *testing.T) {
	dir := nodeClient(t)
	gw := startEcho(t)
	ws, wss, ca := wsURLs(t, gw)
	t.Run("ws", func(t *testing.T) {
		runPeer(t, dir, "node", "client.js", ws, strconv.Itoa(streamBytes)).check(t)
	})
	t.Run("wss", func(t *testing.T) {
		runPeer(t, dir, "node", "client.js", wss, strconv.Itoa(streamBytes), ca).check(t)
	})
}
