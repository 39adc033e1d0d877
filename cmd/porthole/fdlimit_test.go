package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestFitTunnels(t *testing.T) {
	for _, tc := range []struct {
		max   int
		limit uint64
		want  int
		warns bool
	}{
		{max: 10000, limit: 1000, want: 372, warns: true},
		{max: 100, limit: 1000, want: 100},
		{max: 10000, limit: 0, want: 10000}, // limit unknown
		{max: 10000, limit: 100, want: 1, warns: true},
		{max: 10000, limit: 1 << 20, want: 10000},
	} {
		var logs bytes.Buffer
		got := fitTunnels(tc.max, tc.limit, slog.New(slog.NewTextHandler(&logs, nil)))
		if got != tc.want {
			t.Errorf("fitTunnels(%d, limit %d) = %d, want %d", tc.max, tc.limit, got, tc.want)
		}
		if warned := strings.Contains(logs.String(), "lowering the cap"); warned != tc.warns {
			t.Errorf("fitTunnels(%d, limit %d) logged %q; want a warning: %v", tc.max, tc.limit, logs.String(), tc.warns)
		}
	}
}
