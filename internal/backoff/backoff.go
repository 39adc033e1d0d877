// Package backoff paces retries: capped exponential delays with full jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields the delays between attempts. The zero value is not usable;
// set Base and Max.
type Backoff struct {
	Base time.Duration // the first delay's upper bound
	Max  time.Duration // the cap on any delay's upper bound
	n    int
}

// Next returns the delay before the next attempt: a random duration up to
// Base·2ⁿ, capped at Max (full jitter, so many clients do not retry in step).
func (b *Backoff) Next() time.Duration {
	ceil := b.Base << min(b.n, 30)
	if ceil <= 0 || ceil > b.Max {
		ceil = b.Max
	}
	b.n++
	return time.Duration(rand.Int64N(int64(ceil))) + 1
}

// Reset starts the sequence again, after a success.
func (b *Backoff) Reset() { b.n = 0 }
