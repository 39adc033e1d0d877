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
		asked bool
		want  int
		log   string // the level logged, "" for nothing
	}{
		{max: 10000, limit: 1000, asked: true, want: 372, log: "level=WARN"},
		{max: 10000, limit: 1000, want: 372, log: "level=INFO"}, // the default cap
		{max: 100, limit: 1000, asked: true, want: 100},
		{max: 10000, limit: 0, want: 10000}, // limit unknown
		{max: 10000, limit: 100, asked: true, want: 1, log: "level=WARN"},
		{max: 10000, limit: 1 << 20, want: 10000},
	} {
		var logs bytes.Buffer
		got := fitTunnels(tc.max, tc.limit, tc.asked, slog.New(slog.NewTextHandler(&logs, nil)))
		if got != tc.want {
			t.Errorf("fitTunnels(%d, limit %d) = %d, want %d", tc.max, tc.limit, got, tc.want)
		}
		logged := ""
		if strings.Contains(logs.String(), "tunnel cap is lowered") {
			logged = strings.Fields(logs.String())[1]
		}
		if logged != tc.log {
			t.Errorf("fitTunnels(%d, limit %d, asked %v) logged %q; want %q", tc.max, tc.limit, tc.asked, logs.String(), tc.log)
		}
	}
}
