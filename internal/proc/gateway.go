package proc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// Environment variables that turn the test binary into a gateway helper.
const (
	gatewayEnv        = "PORTHOLE_HELPER_GATEWAY" // the routes, PATH=TARGET,...
	gatewayLogEnv     = "PORTHOLE_HELPER_GATEWAY_LOG"
	gatewayCPUProfEnv = "PORTHOLE_HELPER_GATEWAY_CPUPROFILE"
	gatewayMemProfEnv = "PORTHOLE_HELPER_GATEWAY_MEMPROFILE"
)

// shutdownTimeout bounds a gateway helper's shutdown once its stdin closes.
const shutdownTimeout = 2 * time.Second

// GatewayOptions say what StartGateway runs. The zero value of each field
// is its default.
type GatewayOptions struct {
	// Routes are the gateway's routes, "PATH=TARGET,...", each TARGET as
	// service.Parse reads it: echo, tcp://127.0.0.1:PORT. Required.
	Routes string
	// LogLevel is the gateway's log level: debug, info, warn or error.
	// Empty means warn.
	LogLevel string
	// Stderr receives the gateway's logs, slog text lines, and whatever
	// else the process writes there; nil means this process's stderr.
	Stderr io.Writer
	// Wrap is a command prefix the process runs under, as in
	// {"strace", "-c", "-f", "-o", "/tmp/gw.strace"}; nil for none.
	Wrap []string
	// CPUProfile names the file a CPU profile of the process's life is
	// written to; empty for none.
	CPUProfile string
	// MemProfile names the file a heap profile is written to at each
	// Stats; empty for none.
	MemProfile string
}

// StartGateway starts a gateway (gateway.New, then Serve on the handed
// listener) in a helper process. The caller's TestMain must call
// GatewayMain first. Stats counts the gateway's OpenTunnels.
func StartGateway(o *GatewayOptions) (*Helper, error) {
	if o.Routes == "" {
		return nil, fmt.Errorf("proc.StartGateway: no routes")
	}
	level := o.LogLevel
	if level == "" {
		level = "warn"
	}
	return StartHelper(o.Wrap, o.Stderr,
		gatewayEnv+"="+o.Routes,
		gatewayLogEnv+"="+level,
		gatewayCPUProfEnv+"="+o.CPUProfile,
		gatewayMemProfEnv+"="+o.MemProfile,
	)
}

// GatewayMain is what a TestMain that uses StartGateway calls first. In a
// gateway helper process it serves until its stdin closes, shuts the
// gateway down, and returns the exit code and true; in any other process it
// returns 0 and false at once.
func GatewayMain() (code int, isHelper bool) {
	routes := os.Getenv(gatewayEnv)
	if routes == "" {
		return 0, false
	}
	if err := gatewayMain(routes); err != nil {
		fmt.Fprintln(os.Stderr, "gateway helper:", err)
		return 1, true
	}
	return 0, true
}

func gatewayMain(routes string) error {
	memProfile := os.Getenv(gatewayMemProfEnv)
	if memProfile != "" {
		runtime.MemProfileRate = 4096
	}
	var rs []gateway.Route
	for kv := range strings.SplitSeq(routes, ",") {
		p, target, _ := strings.Cut(kv, "=")
		svc, err := service.Parse(target)
		if err != nil {
			return err
		}
		rs = append(rs, gateway.Route{Path: p, Service: svc})
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv(gatewayLogEnv))); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	gw, err := gateway.New(&gateway.Options{Routes: rs, Logger: log})
	if err != nil {
		return err
	}
	ln, err := Listener()
	if err != nil {
		return err
	}
	if f := os.Getenv(gatewayCPUProfEnv); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()

	if err := AnswerStats(gw.OpenTunnels, memProfile); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	gw.Shutdown(ctx)
	if err := <-served; err != http.ErrServerClosed {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
