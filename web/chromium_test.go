package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/porthole/porthole/internal/testgw"
)

// The browser tests drive a real headless Chromium (Debian's chromium
// package) with chromedp. Every wait is bounded: each step by patience, a
// whole browser by browserLife, after which it is killed.
const (
	patience    = 20 * time.Second
	browserLife = 3 * time.Minute
)

// chromiumPath returns the browser to run, or "" when none is installed.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium that a test started; it is killed when
// the test ends.
type browser struct {
	t     *testing.T
	first context.Context // the first tab, which holds the browser
}

// startBrowser starts Chromium with a fresh profile, or skips the test when
// no Chromium is installed (outside CI, where .ci/run installs it).
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium binary on PATH; .ci/run installs Debian's chromium package")
		}
		t.Skip("no chromium binary on PATH (apt-get install chromium); skipping the browser test")
	}
	var out testgw.Buffer
	life, cancelLife := context.WithTimeout(context.Background(), browserLife)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(path),
		chromedp.CombinedOutput(&out),
		chromedp.Headless,
		chromedp.NoSandbox, // as root, Chromium has no sandbox
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// The machine's network is closed: keep Chromium from calling out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.WindowSize(1000, 1200),
		// No UserDataDir: chromedp makes a fresh one and removes it.
	)
	first, cancelFirst := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelFirst()
		cancelAlloc() // waits for the browser to exit
		cancelLife()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	if err := chromedp.Do(first); err != nil {
		t.Fatalf("starting %s: %v; its output:\n%s", path, err, out.String())
	}
	return &browser{t: t, first: first}
}

// tab is one browser tab, with the console messages its page wrote.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newTab opens a tab (the first call uses the tab the browser started with)
// and collects its console until the test ends.
func (b *browser) newTab(name string) *tab {
	b.t.Helper()
	ctx := b.first
	if name != "first" {
		var cancel context.CancelFunc
		ctx, cancel = chromedp.NewContext(b.first)
		b.t.Cleanup(cancel)
		if err := chromedp.Do(ctx); err != nil {
			b.t.Fatalf("opening tab %s: %v", name, err)
		}
	}
	tb := &tab{t: b.t, name: name, ctx: ctx}
	watch, stop := context.WithCancel(ctx)
	messages := chromedp.Console(watch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	b.t.Cleanup(func() {
		stop()
		<-done
	})
	return tb
}

// do runs steps in the tab within patience.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, patience)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("tab %s: %s: %v%s", tb.name, what, err, tb.report())
	}
}

// open loads url in the tab.
func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do("loading "+url, chromedp.Navigate(url))
}

// waitFor waits until the JavaScript expression cond is true in the page.
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, patience+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(patience))); err != nil {
		tb.t.Fatalf("tab %s: waiting for %s: %v%s", tb.name, what, err, tb.report())
	}
}

// eval evaluates expr in the page and decodes its value.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, patience)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("tab %s: evaluating %s: %v%s", tb.name, expr, err, tb.report())
	}
	return v
}

// typeIn types text into the input of the panel sel, then Enter when enter
// is set.
func (tb *tab) typeIn(sel, text string, enter bool) {
	tb.t.Helper()
	if enter {
		text += kb.Enter
	}
	tb.do(fmt.Sprintf("typing %q", text), chromedp.SendKeys(chromedp.CSS(sel+" form.send input"), text))
}

// giveToken types token into the token form of panel sel and submits it.
func (tb *tab) giveToken(sel, token string) {
	tb.t.Helper()
	tb.do("giving the token", chromedp.SendKeys(chromedp.CSS(sel+" form.token input"), token+kb.Enter))
}

// problems returns the console's errors and uncaught exceptions (CSP
// violations among them).
func (tb *tab) problems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var p []string
	for _, m := range tb.console {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			p = append(p, m.String())
		}
	}
	return p
}

// report is what a failure shows of the tab: its transcripts and console.
func (tb *tab) report() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	logs, _ := chromedp.Run(ctx, chromedp.Evaluate[string](
		`[...document.querySelectorAll('[data-widget]')].map(p => p.dataset.widget + ' (' + p.dataset.state + '): ' + p.querySelector('.status').textContent + '\n' + p.querySelector('.log').innerText).join('\n')`))
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\npanels of tab %s:\n%s\nconsole:", tb.name, logs)
	for _, m := range tb.console {
		fmt.Fprintf(&b, "\n  %s: %s", m.Type, m)
	}
	return b.String()
}

// js quotes s as a JavaScript string.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
