// Package config reads the configuration file of porthole serve: a TOML
// file (porthole.toml) with the listeners, TLS, limits, logging and the
// routes with their targets and policies. docs/config.md is the reference
// of every key.
//
// Load is the entry point: it decodes the file, refuses unknown keys, and
// checks every value, returning either a Config ready to use (routes as
// gateway.Route values, files it names already read) or an error naming
// the file and the line of each problem. Nothing is half-loaded: a caller
// that gets an error keeps what it had.
package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// Config is a checked configuration file. A nil pointer field, or an empty
// string where noted, means the file does not set it, and the command's
// own default (or flag) applies.
type Config struct {
	// File is the path the configuration was loaded from.
	File string
	// Listen holds the addresses to listen on.
	Listen Listen
	// TLS holds the HTTPS listener's certificate.
	TLS TLS
	// Limits holds the gateway-wide caps and timeouts.
	Limits Limits
	// Log says how logs are written.
	Log Log
	// Routes are the [[route]] tables, in the file's order, checked as
	// gateway.Options takes them. Empty when the file has none.
	Routes []gateway.Route
}

// Listen is the [listen] table. An empty address (set, not nil) means no
// listener of that kind.
type Listen struct {
	HTTP  *string `toml:"http"`  // the HTTP listener's address, as in 127.0.0.1:8080
	HTTPS *string `toml:"https"` // the HTTPS listener's address
	Admin *string `toml:"admin"` // the admin listener's address (metrics, health)
}

// TLS is the [tls] table: the paths, resolved against the configuration
// file's directory, of a certificate and its key, which Load has checked
// form a pair. Empty strings when the file gives none.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// Limits is the [limits] table.
type Limits struct {
	MaxTunnels       *int           // max_tunnels: gateway.Options.MaxTunnels
	ShutdownTimeout  *time.Duration // shutdown_timeout: how long open tunnels may finish at shutdown
	HandshakeTimeout *time.Duration // handshake_timeout: gateway.Options.HandshakeTimeout
	PingInterval     *time.Duration // ping_interval: 0 means never
	LongPoll         *time.Duration // long_poll: gateway.Options.LongPoll
	SessionIdle      *time.Duration // session_idle: gateway.Options.SessionIdleTimeout
}

// Log is the [log] table; empty strings when the file does not set them.
type Log struct {
	Format string `toml:"format"` // "text" or "json"
	Level  string `toml:"level"`  // "debug", "info", "warn" or "error"
}

// Error is one problem in a configuration file. Load returns one Error,
// or several joined with errors.Join, each at its own line.
type Error struct {
	File string
	Line int // 1-based; 0 when the problem is not at one line
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// The file's shape, as the decoder fills it. Values are checked and
// converted afterwards, where the line of each key is known.
type file struct {
	Listen Listen `toml:"listen"`
	TLS    TLS    `toml:"tls"` // paths as written
	Limits struct {
		MaxTunnels       *int    `toml:"max_tunnels"`
		ShutdownTimeout  *string `toml:"shutdown_timeout"`
		HandshakeTimeout *string `toml:"handshake_timeout"`
		PingInterval     *string `toml:"ping_interval"`
		LongPoll         *string `toml:"long_poll"`
		SessionIdle      *string `toml:"session_idle"`
	} `toml:"limits"`
	Log   Log         `toml:"log"`
	Route []fileRoute `toml:"route"`
}

type fileRoute struct {
	Path                string   `toml:"path"`
	Target              string   `toml:"target"`
	Bare                *bool    `toml:"bare"`
	Carriers            []string `toml:"carriers"`
	Origins             []string `toml:"origins"`
	TokensSHA256        []string `toml:"tokens_sha256"`
	ClientCA            string   `toml:"client_ca"`
	MaxTunnels          int      `toml:"max_tunnels"`
	MaxTunnelsPerClient int      `toml:"max_tunnels_per_client"`
	RatePerClient       float64  `toml:"rate_per_client"`
}

// Load reads the configuration file at path and checks it whole: syntax,
// unknown keys, types, and every value (addresses, durations, targets,
// token digests, the files it names). Relative paths in the file are taken
// from the file's directory. The error names path and the line of each
// problem; see Error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration: %w", err)
	}
	return parse(path, filepath.Dir(path), data)
}

func parse(name, dir string, data []byte) (*Config, error) {
	var f file
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	c := &checker{name: name, dir: dir}
	if err := dec.Decode(&f); err != nil {
		var strict *toml.StrictMissingError
		if !errors.As(err, &strict) {
			return nil, decodeError(name, err) // the rest of the file is unknown
		}
		// Unknown keys: the decoder filled in the known ones, so their
		// problems are told too, all in the order of their lines.
		c.errs = unknownKeys(name, strict)
	}
	c.lines = indexLines(data)
	if c.misspelt() {
		sortByLine(c.errs)
		return nil, errors.Join(c.errs...) // the decoder took keys it should not have
	}
	cfg := c.config(&f)
	if len(c.errs) > 0 {
		sortByLine(c.errs)
		return nil, errors.Join(c.errs...)
	}
	return cfg, nil
}

func sortByLine(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int { return a.(*Error).Line - b.(*Error).Line })
}

// checker converts the decoded file, collecting every problem with its
// line.
type checker struct {
	name  string
	dir   string
	lines lines
	errs  []error
}

// fail records a problem at the line of key path. Line breaks in it,
// which a value quoted from the file or an error naming a file may hold,
// are escaped: each error is one line.
func (c *checker) fail(path, format string, args ...any) {
	msg := oneLine.Replace(fmt.Sprintf(format, args...))
	c.errs = append(c.errs, &Error{File: c.name, Line: c.lines.at(path), Msg: msg})
}

var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

func (c *checker) config(f *file) *Config {
	cfg := &Config{File: c.name}
	cfg.Listen = Listen{
		HTTP:  c.address("listen.http", f.Listen.HTTP),
		HTTPS: c.address("listen.https", f.Listen.HTTPS),
		Admin: c.address("listen.admin", f.Listen.Admin),
	}
	cfg.TLS = c.tls(f)
	l := &f.Limits
	if l.MaxTunnels != nil && *l.MaxTunnels < 0 {
		c.fail("limits.max_tunnels", "limits.max_tunnels is %d; it must be 0 (the default, 10000) or more", *l.MaxTunnels)
	}
	cfg.Limits = Limits{
		MaxTunnels:       l.MaxTunnels,
		ShutdownTimeout:  c.duration("limits.shutdown_timeout", l.ShutdownTimeout, true),
		HandshakeTimeout: c.duration("limits.handshake_timeout", l.HandshakeTimeout, false),
		PingInterval:     c.duration("limits.ping_interval", l.PingInterval, true),
		LongPoll:         c.duration("limits.long_poll", l.LongPoll, false),
		SessionIdle:      c.duration("limits.session_idle", l.SessionIdle, false),
	}
	cfg.Log = f.Log
	switch f.Log.Format {
	case "", "text", "json":
	default:
		c.fail("log.format", "log.format %q: use text or json", f.Log.Format)
	}
	if f.Log.Level != "" {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(f.Log.Level)); err != nil {
			c.fail("log.level", "log.level %q: use debug, info, warn or error", f.Log.Level)
		}
	}
	seen := map[string]int{} // route path → its index
	for i := range f.Route {
		at := indexed("route", i)
		r := &f.Route[i]
		if first, dup := seen[r.Path]; dup && r.Path != "" {
			c.fail(at+".path", "route %s is given twice (first at line %d)", r.Path, c.lines.at(indexed("route", first)+".path"))
			continue
		}
		seen[r.Path] = i
		if rt, ok := c.route(at, r); ok {
			cfg.Routes = append(cfg.Routes, rt)
		}
	}
	return cfg
}

func (c *checker) address(path string, v *string) *string {
	if v == nil || *v == "" {
		return v
	}
	if _, port, err := net.SplitHostPort(*v); err != nil || port == "" {
		c.fail(path, "%s %q: want host:port, as in 127.0.0.1:8080 (an empty string for none)", path, *v)
	}
	return v
}

// duration parses a duration string; zero is allowed only where it means
// something (never, at once).
func (c *checker) duration(path string, v *string, zeroOK bool) *time.Duration {
	if v == nil {
		return nil
	}
	d, err := time.ParseDuration(*v)
	switch {
	case err != nil:
		c.fail(path, "%s %q is not a duration; write one as in \"25s\", \"1m30s\", \"500ms\"", path, *v)
		return nil
	case d < 0 || (d == 0 && !zeroOK):
		c.fail(path, "%s %q: must be positive", path, *v)
		return nil
	}
	return &d
}

func (c *checker) tls(f *file) TLS {
	cert, key := c.file(f.TLS.Cert), c.file(f.TLS.Key)
	switch {
	case cert == "" && key == "":
		return TLS{}
	case cert == "" || key == "":
		c.fail("tls", "[tls] needs both cert and key (without them the HTTPS listener makes a self-signed certificate)")
		return TLS{}
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		c.fail("tls.cert", "tls.cert %q and tls.key %q: %v", cert, key, err)
	}
	return TLS{Cert: cert, Key: key}
}

// file resolves a path the configuration names against its directory.
func (c *checker) file(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// route checks one [[route]] table; at is its path in the line index.
func (c *checker) route(at string, r *fileRoute) (gateway.Route, bool) {
	n := len(c.errs)
	name := "route " + r.Path
	switch {
	case r.Path == "":
		c.fail(at, "[[route]] has no path; give one, as in path = \"/echo\"")
		name = "route"
	default:
		if err := gateway.CheckPath(r.Path); err != nil {
			c.fail(at+".path", "%v", err)
		}
	}
	var svc service.Service
	if r.Target == "" {
		c.fail(at, "%s has no target; use echo, chat or tcp://host:port", name)
	} else if s, err := service.Parse(r.Target); err != nil {
		c.fail(at+".target", "%s: %v", name, err)
	} else {
		svc = s
	}
	for i, cr := range r.Carriers {
		if err := gateway.CheckCarrier(cr); err != nil {
			c.fail(indexed(at+".carriers", i), "%s: %v", name, err)
		}
	}
	if _, ok := c.lines[at+".carriers"]; ok && len(r.Carriers) == 0 {
		c.fail(at+".carriers", "%s: carriers is empty, so no tunnel could open; leave it out to allow all", name)
	}
	for i, o := range r.Origins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			c.fail(indexed(at+".origins", i), "%s: origin %q: write it as a browser sends it, scheme://host[:port] with no path, as in https://app.example", name, o)
		}
	}
	auth := c.auth(at, name, r)
	for _, v := range []struct {
		key string
		n   float64
	}{{"max_tunnels", float64(r.MaxTunnels)}, {"max_tunnels_per_client", float64(r.MaxTunnelsPerClient)}, {"rate_per_client", r.RatePerClient}} {
		if !(v.n >= 0) || math.IsInf(v.n, 0) {
			c.fail(at+"."+v.key, "%s: %s is %g; it must be 0 (no limit) or more", name, v.key, v.n)
		}
	}
	if len(c.errs) > n {
		return gateway.Route{}, false
	}
	bare := r.Bare != nil && *r.Bare
	if r.Bare == nil {
		_, bare = svc.(service.Echo) // as for -route: on for echo
	}
	return gateway.Route{
		Path:     r.Path,
		Service:  svc,
		Bare:     bare,
		Origins:  r.Origins,
		Carriers: r.Carriers,
		Auth:     auth,
		Limits: gateway.Limits{
			MaxTunnels:          r.MaxTunnels,
			MaxTunnelsPerClient: r.MaxTunnelsPerClient,
			RatePerClient:       r.RatePerClient,
		},
	}, true
}

// auth builds a route's access policy from its token digests and client
// CA file; nil when it has neither (an open route).
func (c *checker) auth(at, name string, r *fileRoute) *gateway.Auth {
	_, listed := c.lines[at+".tokens_sha256"]
	if listed && len(r.TokensSHA256) == 0 {
		c.fail(at+".tokens_sha256", "%s: tokens_sha256 is empty, so no token could pass; list at least one, or leave the key out for an open route", name)
	}
	if len(r.TokensSHA256) == 0 && r.ClientCA == "" {
		return nil
	}
	a := &gateway.Auth{}
	for i, h := range r.TokensSHA256 {
		var sum [sha256.Size]byte
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(sum) {
			c.fail(indexed(at+".tokens_sha256", i), "%s: tokens_sha256 entry %q is not a SHA-256 in hex (64 digits); make one with `porthole hash-token`, which reads the token on stdin", name, h)
			continue
		}
		copy(sum[:], b)
		a.Tokens = append(a.Tokens, sum)
	}
	if r.ClientCA != "" {
		p := c.file(r.ClientCA)
		pem, err := os.ReadFile(p)
		switch {
		case err != nil:
			c.fail(at+".client_ca", "%s: client_ca: %v", name, err)
		default:
			a.ClientCAs = x509.NewCertPool()
			if !a.ClientCAs.AppendCertsFromPEM(pem) {
				c.fail(at+".client_ca", "%s: client_ca %q holds no PEM certificate", name, p)
			}
		}
	}
	return a
}

// misspelt refuses keys written in another case than the file's own
// (Route, listen.HTTP): TOML keys are case-sensitive, but the decoder
// matches them to fields whatever their case, as encoding/json does. It
// reports whether it found any.
func (c *checker) misspelt() bool {
	n := len(c.errs)
	paths := slices.Sorted(maps.Keys(c.lines))
	told := map[string]bool{}
	for _, path := range paths {
		parts := strings.Split(path, ".")
		for i := range parts {
			at := strings.Join(parts[:i+1], ".")
			plain := indexRe.ReplaceAllString(at, "")
			if schema[plain] {
				continue
			}
			if right, ok := schemaFold[strings.ToLower(plain)]; ok && !told[at] {
				told[at] = true
				c.fail(at, "key %s: TOML keys are case-sensitive; write %s", plain, right)
			}
			break // unknown keys are the decoder's to refuse
		}
	}
	return len(c.errs) > n
}

// indexRe matches the array indexes of a line index's paths.
var indexRe = regexp.MustCompile(`\[[0-9]+\]`)

// schema holds the dotted paths of every key and table the file takes;
// schemaFold maps each in lower case to its spelling.
var schema, schemaFold = func() (map[string]bool, map[string]string) {
	keys, fold := map[string]bool{}, map[string]string{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for f := range t.Fields() {
			path := join(prefix, f.Tag.Get("toml"))
			keys[path], fold[strings.ToLower(path)] = true, path
			walk(path, f.Type)
		}
	}
	walk("", reflect.TypeFor[file]())
	return keys, fold
}()

// unknownKeys turns the decoder's refusal of unknown keys into an Error
// for each, at its line.
func unknownKeys(name string, strict *toml.StrictMissingError) []error {
	errs := make([]error, len(strict.Errors))
	for i := range strict.Errors {
		e := &strict.Errors[i]
		line, _ := e.Position()
		errs[i] = &Error{File: name, Line: line, Msg: unknownKey(e.Key())}
	}
	return errs
}

// decodeError turns the decoder's error into an Error at its line, in the
// words of this file's keys rather than of Go's types.
func decodeError(name string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if m := mismatch.FindStringSubmatch(msg); m != nil && len(de.Key()) > 0 {
			msg = fmt.Sprintf("%s: want %s, not %s", strings.Join(de.Key(), "."), want(m[2]), article(m[1]))
		}
		return &Error{File: name, Line: line, Msg: msg}
	}
	return &Error{File: name, Msg: err.Error()}
}

// mismatch is go-toml's message for a value of the wrong type.
var mismatch = regexp.MustCompile(`^cannot decode TOML (\w+) into .* of type (.+)$`)

// want names a Go type of the file's shape as a TOML value.
func want(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "a string"
	case goType == "int" || goType == "*int":
		return "an integer"
	case goType == "float64":
		return "a number"
	case goType == "*bool":
		return "true or false"
	case goType == "[]string":
		return "an array of strings"
	case strings.HasPrefix(goType, "[]config.fileRoute"):
		return "[[route]] tables"
	default:
		return "a table"
	}
}

func article(tomlKind string) string {
	switch tomlKind {
	case "integer", "inline", "array":
		return "an " + tomlKind
	}
	return "a " + tomlKind
}

// unknownKey says a key is not one the file takes, and which ones its
// table takes.
func unknownKey(key toml.Key) string {
	t := reflect.TypeFor[file]()
	table := "the file"
	for _, part := range key[:len(key)-1] {
		f, ok := field(t, part)
		if !ok {
			break
		}
		t = f.Type
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		table = "[" + part + "]"
		if part == "route" {
			table = "[[route]]"
		}
	}
	var keys []string
	if t.Kind() == reflect.Struct {
		for f := range t.Fields() {
			keys = append(keys, f.Tag.Get("toml"))
		}
	}
	return fmt.Sprintf("unknown key %s; %s takes %s", strings.Join(key, "."), table, strings.Join(keys, ", "))
}

func field(t reflect.Type, tag string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for f := range t.Fields() {
		if f.Tag.Get("toml") == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
