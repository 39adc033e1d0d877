package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/porthole/porthole/gateway"
)

// adminGrace bounds the admin requests in flight (a scrape) once the
// gateway has stopped.
const adminGrace = 5 * time.Second

// admin is the admin listener of porthole serve (-admin ADDR), apart from
// the gateway's so that it can stay on loopback or a private network:
//
//	/metrics  Prometheus metrics: the gateway's porthole_* and the process's go_* and process_*
//	/healthz  200 "ok" while the process serves
//	/readyz   200 "ok" while the gateway takes new tunnels, 503 "draining" once shutdown began
//
// It stops after the gateway, so a drain can be watched to its end. A nil
// *admin (no -admin) does nothing.
type admin struct {
	addr string
	reg  *prometheus.Registry // the process's, with the Go and process collectors
	srv  *http.Server
}

// newAdmin returns the admin listener for -admin addr, not yet listening;
// nil when addr is empty.
func newAdmin(addr string) *admin {
	if addr == "" {
		return nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &admin{addr: addr, reg: reg}
}

// metrics is the registry the gateway registers its collectors on: nil
// (no metrics) without -admin.
func (a *admin) metrics() prometheus.Registerer {
	if a == nil {
		return nil
	}
	return a.reg
}

// start listens, logs the URL (with the port the kernel picked for :0),
// and serves gw's readiness and the metrics in a goroutine of its own,
// which sends Serve's error to errc unless stop ended it.
func (a *admin) start(gw *gateway.Gateway, log *slog.Logger, errc chan<- error) error {
	if a == nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("-admin %s: %w", a.addr, err)
	}
	log.Info("admin listening", "url", "http://"+ln.Addr().String()+"/")
	a.srv = &http.Server{
		Handler:           adminHandler(a.reg, gw.Ready, log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin listener: %w", err)
		}
	}()
	return nil
}

// stop shuts the listener down once the gateway has stopped, giving
// requests in flight adminGrace.
func (a *admin) stop() {
	if a == nil || a.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminGrace)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
}

// adminHandler serves /metrics from reg, /healthz, and /readyz as ready
// says.
func adminHandler(reg prometheus.Gatherer, ready func() bool, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready() {
			plain(w, http.StatusOK, "ok")
			return
		}
		plain(w, http.StatusServiceUnavailable, "draining: no new tunnels")
	})
	return mux
}

func plain(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, text)
}
