package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/config"
)

// serve -config FILE: the file's settings sit between the flags' defaults
// and the command line. Each setting of [listen], [tls], [limits] and
// [log] is the value of a serve flag; loadConfig sets every flag the
// command line left alone to the file's value, as peterbourgon/ff does, so
// the rest of serve reads flags only. Routes have policies no flag can
// say; routeSource picks them: -route flags if given, else the file's,
// else the default routes.

// loadConfig loads the file at path (none when path is "") and sets from
// it the flags of fs that the command line did not set. check is -check,
// which needs a file.
func loadConfig(fs *flag.FlagSet, path string, check bool) (*config.Config, error) {
	if path == "" {
		if check {
			return nil, errors.New("-check checks a configuration file: give -config FILE")
		}
		return nil, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	// A certificate and its key go together: either flag given means the
	// command line's pair, not half of the file's.
	certGiven := isSet(fs, "cert") || isSet(fs, "key")
	for _, s := range fileSettings(cfg) {
		if isSet(fs, s.flag) || (certGiven && strings.HasPrefix(s.key, "tls.")) {
			continue
		}
		if fs.Lookup(s.flag) == nil {
			return nil, fmt.Errorf("%s: %s: this porthole has no -%s to take it", path, s.key, s.flag)
		}
		if err := fs.Set(s.flag, s.value); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, s.key, err)
		}
	}
	return cfg, nil
}

// setting is one value of the file, as the flag that carries it takes it.
type setting struct{ key, flag, value string }

// fileSettings lists the settings cfg gives, with their flags.
func fileSettings(cfg *config.Config) []setting {
	var s []setting
	str := func(key, flag string, v *string) {
		if v != nil {
			s = append(s, setting{key, flag, *v})
		}
	}
	nonEmpty := func(key, flag, v string) {
		if v != "" {
			s = append(s, setting{key, flag, v})
		}
	}
	dur := func(key, flag string, d *time.Duration) {
		if d != nil {
			s = append(s, setting{key, flag, d.String()})
		}
	}
	str("listen.http", "listen", cfg.Listen.HTTP)
	str("listen.https", "tls-listen", cfg.Listen.HTTPS)
	str("listen.admin", "admin", cfg.Listen.Admin)
	nonEmpty("tls.cert", "cert", cfg.TLS.Cert)
	nonEmpty("tls.key", "key", cfg.TLS.Key)
	if n := cfg.Limits.MaxTunnels; n != nil {
		s = append(s, setting{"limits.max_tunnels", "max-tunnels", strconv.Itoa(*n)})
	}
	dur("limits.shutdown_timeout", "shutdown-timeout", cfg.Limits.ShutdownTimeout)
	dur("limits.handshake_timeout", "handshake-timeout", cfg.Limits.HandshakeTimeout)
	dur("limits.ping_interval", "ping-interval", cfg.Limits.PingInterval)
	dur("limits.long_poll", "long-poll", cfg.Limits.LongPoll)
	dur("limits.session_idle", "session-idle", cfg.Limits.SessionIdle)
	nonEmpty("log.format", "log-format", cfg.Log.Format)
	nonEmpty("log.level", "log-level", cfg.Log.Level)
	return s
}

// routeSource gives serve its routes, at start and at each reload: the
// -route flags when given (they replace the file's routes), else the
// file's, else the default routes; -allow-origin, when given, replaces
// every route's origins.
type routeSource struct {
	cfg     *config.Config // nil without -config
	flags   listFlag       // -route
	origins listFlag       // -allow-origin
	current []gateway.Route
}

func (s *routeSource) routes() ([]gateway.Route, error) {
	var rs []gateway.Route
	switch {
	case len(s.flags) > 0:
		var err error
		if rs, err = parseRoutes(s.flags); err != nil {
			return nil, err
		}
	case s.cfg != nil && len(s.cfg.Routes) > 0:
		rs = slices.Clone(s.cfg.Routes)
	default:
		var err error
		if rs, err = parseRoutes(defaultRoutes); err != nil {
			return nil, err
		}
	}
	if len(s.origins) > 0 || s.cfg == nil {
		for i := range rs {
			rs[i].Origins = s.origins
		}
	}
	keepServices(rs, s.current)
	s.current = rs
	return rs, nil
}

// keepServices gives each route of rs that old had with the same target
// the service value it had: the chat room a reload keeps is the same room,
// with the same participants.
func keepServices(rs, old []gateway.Route) {
	for i := range rs {
		for _, o := range old {
			if o.Path == rs[i].Path && o.Service.String() == rs[i].Service.String() {
				rs[i].Service = o.Service
			}
		}
	}
}

// reload reads the file again and gives the gateway its routes; on any
// error it logs it (FILE:LINE: reason) and the running routes stay.
// Settings other than the routes take effect at the next start, and a
// change to them is logged as such.
func (s *routeSource) reload(gw *gateway.Gateway, log *slog.Logger) {
	cfg, err := config.Load(s.cfg.File)
	if err != nil {
		log.Error("config reload refused; the running configuration stays", "err", err)
		return
	}
	next := &routeSource{cfg: cfg, flags: s.flags, origins: s.origins, current: s.current}
	rs, err := next.routes()
	if err == nil {
		err = gw.SetRoutes(rs)
	}
	if err != nil {
		log.Error("config reload refused; the running configuration stays", "err", fmt.Errorf("%s: %w", cfg.File, err))
		return
	}
	if changed := restartSettings(s.cfg, cfg); len(changed) > 0 {
		log.Warn("config: these settings take effect at the next start, not on reload", "changed", strings.Join(changed, ","))
	}
	attrs := []any{"file", cfg.File, "routes", len(rs)}
	if len(s.flags) > 0 {
		attrs = append(attrs, "note", "the routes are the -route flags'")
	}
	*s = *next
	log.Info("config reloaded", attrs...)
}

// restartSettings names the tables whose settings differ between a and b.
func restartSettings(a, b *config.Config) []string {
	var changed []string
	for _, t := range []struct {
		name string
		a, b any
	}{{"listen", a.Listen, b.Listen}, {"tls", a.TLS, b.TLS}, {"limits", a.Limits, b.Limits}, {"log", a.Log, b.Log}} {
		if !reflect.DeepEqual(t.a, t.b) {
			changed = append(changed, t.name)
		}
	}
	return changed
}

// hangups returns the SIGHUP notifications serve reloads its file on, and
// a function that stops them. Without a file it returns a nil channel and
// SIGHUP keeps its default (it ends the process).
func hangups(file string) (<-chan os.Signal, func()) {
	if file == "" {
		return nil, func() {}
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	return c, func() { signal.Stop(c) }
}
