package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The admin handler: /healthz always, /readyz as the gateway says,
// /metrics from the registry given.
func TestAdminHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "porthole_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(adminHandler(reg, ready.Load, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	get := func(path string, code int, want string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %q, want %d and %q", path, resp.StatusCode, body, code, want)
		}
	}
	get("/healthz", 200, "ok\n")
	get("/readyz", 200, "ok\n")
	get("/metrics", 200, "porthole_test_total 3\n")
	ready.Store(false)
	get("/readyz", 503, "draining")
	get("/healthz", 200, "ok\n")
	get("/", 404, "")
}

// -log-format and -log-level make the handler on stderr.
func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", slog.LevelWarn)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("dropped")
	log.Warn("kept", "n", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "kept" || rec["n"] != 1.0 {
		t.Errorf("json at warn wrote %q (%v), want the one warning as JSON", buf.String(), err)
	}

	buf.Reset()
	if log, err = newLogger(&buf, "text", slog.LevelDebug); err != nil {
		t.Fatal(err)
	}
	log.Debug("seen")
	if !strings.Contains(buf.String(), "level=DEBUG msg=seen") {
		t.Errorf("text at debug wrote %q", buf.String())
	}

	if _, err := newLogger(&buf, "xml", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("-log-format xml: %v, want an error naming text and json", err)
	}
}
