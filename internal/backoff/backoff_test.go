package backoff

import (
	"testing"
	"time"
)

// TestNextGrowsThenCaps: each delay lies in (0, min(Base·2ⁿ, Max)], the
// bounds grow to the cap and stay there, jitter spreads the delays, and
// Reset starts again from Base.
func TestNextGrowsThenCaps(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	seen := map[time.Duration]bool{}
	for n := range 200 {
		ceil := min(b.Base<<min(n, 30), b.Max)
		d := b.Next()
		if d <= 0 || d > ceil {
			t.Fatalf("attempt %d: delay %v outside (0, %v]", n, d, ceil)
		}
		seen[d] = true
	}
	if len(seen) < 150 {
		t.Errorf("only %d distinct delays in 200: no jitter", len(seen))
	}
	b.Reset()
	for range 20 {
		if d := b.Next(); d > b.Max {
			t.Fatalf("delay %v over the cap %v", d, b.Max)
		}
		b.Reset()
		if d := b.Next(); d > b.Base {
			t.Fatalf("after Reset: delay %v over Base %v", d, b.Base)
		}
	}
}
