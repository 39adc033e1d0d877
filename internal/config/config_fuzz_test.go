package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// fuzzFile is the name the fuzz target gives its configuration.
const fuzzFile = "fuzz.toml"

// FuzzParse parses any bytes as a configuration file, and checks that:
//
//   - parsing never panics, and gives the same answer twice;
//   - it returns a configuration or an error, never both nor neither;
//   - an error is one or more *Error, one per line of its text, each of
//     one line that names the file and a line of it (from 1 to the
//     number of lines the file has), then says what is wrong;
//   - a configuration that parses spells every key as documented (TOML
//     keys are case-sensitive), sets no rate_per_client that is not a
//     number, and, written back as TOML (fuzzEncode), is
//     accepted again and means the same: whatever the checks let through
//     passes them again in its plain form.
//
// The files a configuration names (tls.cert, tls.key, a route's
// client_ca) are looked for in an empty directory; an input naming one
// by an absolute path or through ".." is skipped, so that the fuzzer
// never reads what lies outside (such as /dev/zero, which has no end).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"\n\n# only a comment\n",
		"[listen]\nhttp = \"127.0.0.1:8080\"\nhttps = \"\"\nadmin = \"127.0.0.1:9090\"\n\n[limits]\nmax_tunnels = 500\nshutdown_timeout = \"3s\"\nhandshake_timeout = \"4s\"\nping_interval = \"0s\"\nlong_poll = \"20s\"\nsession_idle = \"1m30s\"\n\n[log]\nformat = \"json\"\nlevel = \"debug\"\n",
		"[[route]]\npath = \"/echo\"\ntarget = \"echo\"\n\n[[route]]\npath = \"/ssh\"\ntarget = \"tcp://127.0.0.1:22\"\nbare = false\ncarriers = [\"raw\", \"websocket\", \"poll\"]\norigins = [\"https://app.example\", \"http://127.0.0.1:8080\"]\ntokens_sha256 = [\n  \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\",\n]\nmax_tunnels = 10\nmax_tunnels_per_client = 2\nrate_per_client = 0.5\n",
		"route = [{path = \"/a\", target = \"tcp://h:1\", carriers = [\"raw\"]}, {path = \"/b\", target = \"chat\", origins = []}]\n",
		"[[route]]\n[route.x]\n[[route.y]]\na.b.c = 1\n",
		"[limits]\nlong_poll = \"1s\"\nmax_tunnels = 3\n",
		"listen.http = \"localhost:0\"\nlimits.max_tunnels = 0\n",
		// Refusals.
		"[listen]\nhttp = \"8080\"\nhttps = \"::1\"\n",
		"[limits]\nmax_tunnels = -1\nlong_poll = \"0s\"\nsession_idle = \"-5s\"\nshutdown_timeout = \"soon\"\nhandshake_timeout = 5\n",
		"[log]\nformat = \"xml\"\nlevel = \"loud\"\n",
		"[tls]\ncert = \"cert.pem\"\n",
		"tls.key = \"key.pem\"\n",
		"[tls]\ncert = \"missing.pem\"\nkey = \"missing.pem\"\n",
		"[[route]]\npath = \"/a\"\ntarget = \"echo\"\n[[route]]\npath = \"/a\"\ntarget = \"chat\"\n",
		"[[route]]\ntarget = \"echo\"\n[[route]]\npath = \"nope\"\n[[route]]\npath = \"/\"\ntarget = \"udp://x:1\"\n",
		"[[route]]\npath = \"/a\"\ntarget = \"tcp://:1\"\ncarriers = []\ntokens_sha256 = []\n",
		"[[route]]\npath = \"/a\"\ntarget = \"echo\"\ncarriers = [\"raw\", \"h2\"]\norigins = [\"https://x/path\", \"null\", \"app.example\"]\ntokens_sha256 = [\"abc\", \"zz\"]\nclient_ca = \"ca.pem\"\n",
		"[[route]]\npath = \"/a\"\ntarget = \"echo\"\nmax_tunnels = -1\nmax_tunnels_per_client = -2\nrate_per_client = -0.5\n",
		"[[route]]\npath = \"/a\"\ntarget = \"echo\"\nrate_per_client = inf\n",
		"[[route]]\npath = \"/a\"\ntarget = \"echo\"\nrate_per_client = nan\n",
		"[[route]]\npath = \"/a\"\ntarget = \"echo\"\nbare = \"yes\"\n",
		"[listen]\nhttp = 8080\nport = 1\n[extra]\nx = 1\n",
		"route = \"/echo\"\n",
		"[listen\nhttp = \"x\"\n",
		"a = \"unterminated\n",
		"[[route]]\npath = \"/a\"\ntarget = \"echo\"\n[[route]]\npath = \"/a\"\ntarget = \"echo\"\n[[route]]\npath = \"/a\"\n",
		"\ufeff[limits]\r\nmax_tunnels = 1\r\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 || namesOutside(data) {
			return
		}
		cfg, err := parse(fuzzFile, dir, data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("parse returned %v and %v: want a configuration or an error", cfg, err)
		}
		again, err2 := parse(fuzzFile, dir, data)
		if err != nil {
			checkParseErrors(t, err, bytes.Count(data, []byte("\n"))+1)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("parsed twice: %v, then %v", err, err2)
			}
			return
		}
		if key := undocumentedKey(data); key != "" {
			t.Fatalf("the configuration is taken with key %s, which the file's keys do not spell so (TOML keys are case-sensitive)", key)
		}
		for _, r := range cfg.Routes {
			if math.IsNaN(r.Limits.RatePerClient) {
				t.Fatalf("route %s takes rate_per_client = nan, which no limit can be", r.Path)
			}
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("parsed twice: %+v, then %+v (%v)", cfg, again, err2)
		}
		doc := fuzzEncode(t, cfg)
		back, err := parse(fuzzFile, dir, doc)
		if err != nil {
			t.Fatalf("the configuration written back is refused: %v\n%s", err, doc)
		}
		if !reflect.DeepEqual(cfg, back) {
			t.Fatalf("the configuration written back reads differently:\n%s\nwas %+v\nnow %+v", doc, cfg, back)
		}
	})
}

// checkParseErrors checks a parse error of a file of n lines.
func checkParseErrors(t *testing.T, err error, n int) {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	text := strings.Split(err.Error(), "\n")
	if len(text) != len(errs) {
		t.Fatalf("%d errors in %d lines of text:\n%s", len(errs), len(text), err)
	}
	for i, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %T %q, want a *config.Error", e, e)
		}
		if ce.File != fuzzFile || ce.Line < 1 || ce.Line > n {
			t.Errorf("error %q names file %q line %d; want %s and a line from 1 to %d", text[i], ce.File, ce.Line, fuzzFile, n)
		}
		if strings.TrimSpace(ce.Msg) == "" || strings.ContainsAny(ce.Msg, "\r\n") {
			t.Errorf("error at line %d says %q: want one line", ce.Line, ce.Msg)
		}
	}
}

// namesOutside reports whether data, read as TOML, names a file by an
// absolute path or through "..", where a configuration can name files:
// tls.cert, tls.key and a route's client_ca.
func namesOutside(data []byte) bool {
	var doc map[string]any
	if toml.Unmarshal(data, &doc) != nil {
		return false // not TOML: parse refuses it before it reads files
	}
	outside := func(v any) bool {
		p, ok := v.(string)
		return ok && (filepath.IsAbs(p) || strings.Contains(p, ".."))
	}
	if tbl, ok := doc["tls"].(map[string]any); ok && (outside(tbl["cert"]) || outside(tbl["key"])) {
		return true
	}
	var routes []any
	switch r := doc["route"].(type) {
	case []any:
		routes = r
	case []map[string]any:
		for _, m := range r {
			routes = append(routes, m)
		}
	}
	for _, r := range routes {
		if m, ok := r.(map[string]any); ok && outside(m["client_ca"]) {
			return true
		}
	}
	return false
}

// undocumentedKey returns the first key, in a walk of data read as
// TOML, that the file's shape (the toml tags of type file) does not spell
// exactly so; "" when there is none.
func undocumentedKey(data []byte) string {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return "(none: the file is not TOML: " + err.Error() + ")"
	}
	return undocumented(doc, reflect.TypeFor[file](), "")
}

func undocumented(tbl map[string]any, t reflect.Type, at string) string {
	keys := slices.Sorted(maps.Keys(tbl))
	for _, k := range keys {
		path := k
		if at != "" {
			path = at + "." + k
		}
		var ft reflect.Type
		for f := range t.Fields() {
			if f.Tag.Get("toml") == k {
				ft = f.Type
			}
		}
		if ft == nil {
			return path
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch v := tbl[k].(type) {
		case map[string]any:
			if ft.Kind() == reflect.Struct {
				if bad := undocumented(v, ft, path); bad != "" {
					return bad
				}
			}
		case []map[string]any:
			for i, e := range v {
				if bad := undocumented(e, ft.Elem(), path+"["+strconv.Itoa(i)+"]"); bad != "" {
					return bad
				}
			}
		case []any:
			for i, e := range v {
				if m, ok := e.(map[string]any); ok && ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
					if bad := undocumented(m, ft.Elem(), path+"["+strconv.Itoa(i)+"]"); bad != "" {
						return bad
					}
				}
			}
		}
	}
	return ""
}

// fuzzEncode writes cfg as a configuration file, each value in its plain
// form: every key it sets, bare explicit, durations as time.Duration
// prints them, token digests in hex. A configuration that parsed names no
// file (the fuzz target's directory is empty), so none is written.
func fuzzEncode(t *testing.T, cfg *Config) []byte {
	t.Helper()
	doc := map[string]any{}
	table := func(name string) map[string]any {
		m, ok := doc[name].(map[string]any)
		if !ok {
			m = map[string]any{}
			doc[name] = m
		}
		return m
	}
	for key, v := range map[string]*string{"http": cfg.Listen.HTTP, "https": cfg.Listen.HTTPS, "admin": cfg.Listen.Admin} {
		if v != nil {
			table("listen")[key] = *v
		}
	}
	if cfg.TLS != (TLS{}) {
		t.Fatalf("a configuration with TLS files %+v, yet the directory is empty", cfg.TLS)
	}
	l := cfg.Limits
	if l.MaxTunnels != nil {
		table("limits")["max_tunnels"] = *l.MaxTunnels
	}
	for key, d := range map[string]*time.Duration{
		"shutdown_timeout": l.ShutdownTimeout, "handshake_timeout": l.HandshakeTimeout,
		"ping_interval": l.PingInterval, "long_poll": l.LongPoll, "session_idle": l.SessionIdle,
	} {
		if d != nil {
			table("limits")[key] = d.String()
		}
	}
	if cfg.Log.Format != "" {
		table("log")["format"] = cfg.Log.Format
	}
	if cfg.Log.Level != "" {
		table("log")["level"] = cfg.Log.Level
	}
	var routes []map[string]any
	for _, r := range cfg.Routes {
		m := map[string]any{"path": r.Path, "target": r.Service.String(), "bare": r.Bare}
		if r.Carriers != nil {
			m["carriers"] = r.Carriers
		}
		if r.Origins != nil {
			m["origins"] = r.Origins
		}
		if r.Auth != nil {
			if r.Auth.ClientCAs != nil {
				t.Fatal("a route with client CAs, yet the directory is empty")
			}
			var sums []string
			for _, s := range r.Auth.Tokens {
				sums = append(sums, hex.EncodeToString(s[:]))
			}
			m["tokens_sha256"] = sums
		}
		for key, n := range map[string]int{"max_tunnels": r.Limits.MaxTunnels, "max_tunnels_per_client": r.Limits.MaxTunnelsPerClient} {
			if n != 0 {
				m[key] = n
			}
		}
		if r.Limits.RatePerClient != 0 {
			m["rate_per_client"] = r.Limits.RatePerClient
		}
		routes = append(routes, m)
	}
	if routes != nil {
		doc["route"] = routes
	}
	b, err := toml.Marshal(doc)
	if err != nil {
		t.Fatalf("writing %+v as TOML: %v", cfg, err)
	}
	return b
}
