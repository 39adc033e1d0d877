package bufpool_test

import (
	"testing"

	"github.com/porthole/porthole/internal/bufpool"
)

// TestGetPut: each size comes from its own pool and goes back to it.
func TestGetPut(t *testing.T) {
	for _, size := range []int{bufpool.Small, bufpool.Large} {
		bp := bufpool.Get(size)
		if len(*bp) != size {
			t.Fatalf("Get(%d) lent %d bytes", size, len(*bp))
		}
		bufpool.Put(bp)
	}
}

// TestNext: a read that filled its buffer moves the next one to Large; any
// other goes back to Small.
func TestNext(t *testing.T) {
	for _, c := range []struct{ n, size, want int }{
		{bufpool.Small, bufpool.Small, bufpool.Large},
		{bufpool.Large, bufpool.Large, bufpool.Large},
		{100, bufpool.Small, bufpool.Small},
		{bufpool.Small, bufpool.Large, bufpool.Small},
		{0, bufpool.Small, bufpool.Small},
	} {
		if got := bufpool.Next(c.n, c.size); got != c.want {
			t.Errorf("Next(%d, %d) = %d, want %d", c.n, c.size, got, c.want)
		}
	}
}

// TestGetOtherSize: a size with no pool is a programming error, told at
// once rather than lent the wrong buffer.
func TestGetOtherSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Get(1000) lent a buffer")
		}
	}()
	bufpool.Get(1000)
}
