package main

import (
	"fmt"
	"io"
	"log/slog"
)

// newLogger returns the logger the -log-format and -log-level flags ask
// for, writing to w (stderr: stdout carries connect's tunnel bytes).
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: use text or json", format)
}
