package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/tlsutil"
	"github.com/porthole/porthole/service"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("porthole serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen    = fs.String("listen", "127.0.0.1:8080", "HTTP listen `address`; empty for none")
		tlsListen = fs.String("tls-listen", "", "HTTPS listen `address`, as in 127.0.0.1:8443")
		certFile  = fs.String("cert", "", "TLS certificate `file` (PEM); without -cert and -key a self-signed one is made")
		keyFile   = fs.String("key", "", "TLS private key `file` (PEM)")
		maxTun    = fs.Int("max-tunnels", 10000, "cap on open tunnels; beyond it requests get 503")
		drain     = fs.Duration("shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long open tunnels may finish before they are closed")
		pingEvery = fs.Duration("ping-interval", 30*time.Second, "how often idle WebSocket tunnels are pinged, so intermediaries keep them; 0 for never. Keep it under the idle timeout of any proxy in front")
		longPoll  = fs.Duration("long-poll", 25*time.Second, "how long a poll carrier's receive waits for bytes; keep it under the read timeout of any proxy in front")
		idle      = fs.Duration("session-idle", 60*time.Second, "a poll session without requests for this long is closed")
		handshake = fs.Duration("handshake-timeout", 10*time.Second, "bound on opening a route's service and answering a tunnel's handshake")
		confFile  = fs.String("config", "", "read settings and routes from this TOML `file` (docs/config.md); flags given beside it win over its values. SIGHUP reloads its routes")
		check     = fs.Bool("check", false, "with -config: check the file, print \"FILE: ok (N routes)\" and exit, without listening")
		adminAddr = fs.String("admin", "", "admin listen `address` for /metrics (Prometheus), /healthz and /readyz, as in 127.0.0.1:9090; empty for none")
		logFormat = fs.String("log-format", "text", "log `format` on stderr: text or json")
		logLevel  slog.Level
		routes    listFlag
		origins   listFlag
	)
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "least `level` logged: debug, info, warn or error")
	fs.Var(&origins, "allow-origin", "browser `origin` (as in https://app.example) allowed to open WebSocket tunnels on every route, repeatable; default: the gateway's own host only")
	fs.Var(&routes, "route", "`PATH=TARGET`, repeatable: TARGET is echo, chat or tcp://host:port (default: /echo=echo and /chat=chat); with -config, replaces the file's routes")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: porthole serve [flags]\n\nRuns a gateway. With no flags: http://127.0.0.1:8080, the routes /echo and /chat, the page at /.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q; routes are given with -route PATH=TARGET", fs.Args())
	}
	file, err := loadConfig(fs, *confFile, *check)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, *logFormat, logLevel)
	if err != nil {
		return err
	}
	src := &routeSource{cfg: file, flags: routes, origins: origins}
	rs, err := src.routes()
	if err != nil {
		return err
	}
	if *listen == "" && *tlsListen == "" {
		return errors.New("nothing to listen on: give -listen or -tls-listen")
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("-cert and -key go together")
	}
	if *longPoll <= 0 || *idle <= 0 {
		return errors.New("-long-poll and -session-idle must be positive durations, as in 25s")
	}
	ping := *pingEvery
	if ping == 0 {
		ping = -1 // gateway.Options: negative is never
	}
	adm := newAdmin(*adminAddr)
	fitLog := log
	if *check {
		fitLog = slog.New(slog.DiscardHandler) // -check prints its result only
	}
	gw, err := gateway.New(&gateway.Options{
		Routes:             rs,
		MaxTunnels:         fitTunnels(*maxTun, openFileLimit(), isSet(fs, "max-tunnels"), fitLog),
		PingInterval:       ping,
		LongPoll:           *longPoll,
		SessionIdleTimeout: *idle,
		HandshakeTimeout:   *handshake,
		Logger:             log,
		Metrics:            adm.metrics(),
	})
	if err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (%d routes)\n", *confFile, len(rs))
		return nil
	}
	hup, stopHup := hangups(*confFile)
	defer stopHup()

	errc := make(chan error, 3) // the HTTP, HTTPS and admin listeners
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return err
		}
		log.Info("listening", "url", "http://"+ln.Addr().String()+"/")
		go func() { errc <- gw.Serve(ln) }()
	}
	if *tlsListen != "" {
		cfg, err := serverTLS(*certFile, *keyFile, *tlsListen, log)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *tlsListen)
		if err != nil {
			return err
		}
		log.Info("listening", "url", "https://"+ln.Addr().String()+"/")
		go func() { errc <- gw.ServeTLS(ln, cfg) }()
	}
	if err := adm.start(gw, log, errc); err != nil {
		return err
	}

	for running := true; running; {
		select {
		case err := <-errc:
			return err
		case <-hup:
			src.reload(gw, log)
		case <-ctx.Done():
			running = false
		}
	}
	log.Info("shutting down: no new tunnels; open ones may finish", "timeout", *drain)
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil {
		log.Warn("shutdown deadline passed; closed the tunnels still open", "err", err)
	}
	adm.stop()
	log.Info("stopped")
	return nil
}

// Each tunnel holds two sockets (client and service); descriptorsReserved
// are kept for listeners, accepts in progress, logs and splice pipes.
const (
	descriptorsPerTunnel = 2
	descriptorsReserved  = 256
)

// fitTunnels lowers the tunnel cap to what the open-file limit can hold:
// past it, accept fails and clients get no answer at all, where the cap
// answers 503. Lowering a cap the user asked for is a warning; fitting the
// default is only noted.
func fitTunnels(max int, limit uint64, asked bool, log *slog.Logger) int {
	if limit == 0 {
		return max
	}
	fit := 1
	if limit > descriptorsReserved+descriptorsPerTunnel {
		fit = int(min((limit-descriptorsReserved)/descriptorsPerTunnel, 1<<30))
	}
	if max <= fit {
		return max
	}
	level := slog.LevelInfo
	if asked {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "the tunnel cap is lowered to what the open-file limit holds (raise the limit with ulimit -n)",
		"open_file_limit", limit, "max_tunnels", fit, "asked", max)
	return fit
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// defaultRoutes are the routes of a serve without -route: the built-in echo
// (with the bare form) and the chat room the page at / joins.
var defaultRoutes = listFlag{"/echo=echo", "/chat=chat"}

// parseRoutes reads -route values. The bare form is on for echo routes.
func parseRoutes(vals []string) ([]gateway.Route, error) {
	var rs []gateway.Route
	for _, v := range vals {
		path, target, ok := strings.Cut(v, "=")
		if !ok {
			return nil, fmt.Errorf("-route %q: want PATH=TARGET, as in /ssh=tcp://127.0.0.1:22", v)
		}
		svc, err := service.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("-route %q: %w", v, err)
		}
		_, isEcho := svc.(service.Echo)
		rs = append(rs, gateway.Route{Path: path, Service: svc, Bare: isEcho})
	}
	return rs, nil
}

// serverTLS loads the certificate, or makes a self-signed one and logs its
// fingerprint for clients to pin.
func serverTLS(certFile, keyFile, addr string, log *slog.Logger) (*tls.Config, error) {
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("loading -cert %s and -key %s: %w", certFile, keyFile, err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" && !slices.Contains(hosts, h) {
		hosts = append(hosts, h)
	}
	cert, err := tlsutil.SelfSigned(hosts...)
	if err != nil {
		return nil, fmt.Errorf("making a self-signed certificate: %w", err)
	}
	log.Info("self-signed TLS certificate for development; clients pin it with -fingerprint",
		"sha256", tlsutil.Fingerprint(cert.Leaf.Raw), "hosts", strings.Join(hosts, ","))
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
