package web_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// portholeBinary builds the porthole command once for the package's tests.
func portholeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "porthole-web-test-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "porthole")
		build := exec.Command("go", "build", "-o", binPath, "github.com/porthole/porthole/cmd/porthole")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building porthole: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
