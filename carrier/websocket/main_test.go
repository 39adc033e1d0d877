package websocket_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: a
// tunnel, relay, keep-alive or server that never ended.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
