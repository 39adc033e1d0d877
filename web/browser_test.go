package web_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

var screenshot = flag.String("screenshot", "", "write a PNG of the page with a chat in progress to this `file`")

const (
	echoPanel = `[data-widget="echo"]`
	chatPanel = `[data-widget="chat"]`
)

// startPageGateway runs a gateway with the default routes of porthole serve
// and the given extra ones, and returns it and the URL of its page.
func startPageGateway(t *testing.T, extra ...gateway.Route) (*testgw.Gateway, string) {
	routes := append([]gateway.Route{
		{Path: "/echo", Service: service.Echo{}, Bare: true},
		{Path: "/chat", Service: &service.Chat{}},
	}, extra...)
	g := testgw.Start(t, gateway.Options{Routes: routes})
	return g, g.URL + "/"
}

// connected waits until the panel sel has its tunnel open.
func (tb *tab) connected(sel string) {
	tb.t.Helper()
	tb.waitFor(sel+" to connect", fmt.Sprintf(`document.querySelector(%s).dataset.state === "open"`, js(sel)))
}

// sees waits until the transcript of panel sel has a line of the given
// kind (in, out, mine, notice), speaker (who, "" for none) and text.
func (tb *tab) sees(sel, kind, who, text string) {
	tb.t.Helper()
	tb.waitFor(fmt.Sprintf("%s line %q from %q in %s", kind, text, who, sel), fmt.Sprintf(
		`[...document.querySelectorAll(%s)].some(li => li.className === %s && (li.querySelector(".who")?.textContent ?? "") === %s && li.querySelector(".text").textContent === %s)`,
		js(sel+" .log li"), js(kind), js(who), js(text)))
}

// The page loads with its script and style sheet under its CSP, lists the
// routes, connects its echo terminal and chat panel, and logs no error.
func TestBrowserPageLoads(t *testing.T) {
	_, page := startPageGateway(t, gateway.Route{Path: "/ssh", Service: &service.TCP{Addr: testgw.DeadAddr(t)}})
	tb := startBrowser(t).newTab("first")
	tb.open(page)

	if got, want := eval[[]string](tb, `[...document.querySelectorAll("h2 code")].map(e => e.textContent)`), []string{"/echo", "/chat", "/ssh"}; !slices.Equal(got, want) {
		t.Errorf("the page lists routes %q, want %q", got, want)
	}
	tb.connected(echoPanel)
	tb.connected(chatPanel)
	tb.waitFor("the chat's welcome", `document.querySelector('[data-widget="chat"] .status').textContent === "Connected as guest1"`)
	if !eval[bool](tb, `getComputedStyle(document.querySelector(".log")).overflowY === "auto"`) {
		t.Error("the style sheet did not apply")
	}
	if !eval[bool](tb, `document.querySelector('section:last-of-type details').open && !document.querySelector('section:first-of-type details').open`) {
		t.Error("the terminal instructions should be open for /ssh only, which has no browser client")
	}
	if p := tb.problems(); len(p) > 0 {
		t.Errorf("the console has errors: %q", p)
	}
}

// A line typed in the echo terminal goes out as a WebSocket text message
// and comes back as the stream's bytes.
func TestBrowserEcho(t *testing.T) {
	_, page := startPageGateway(t)
	tb := startBrowser(t).newTab("first")
	tb.open(page)
	tb.connected(echoPanel)

	for _, line := range []string{"hello, echo", "ünïcødé ✓ and a longer line to go with it"} {
		tb.typeIn(echoPanel, line, true)
		tb.sees(echoPanel, "out", "you", line)
		tb.sees(echoPanel, "in", "echo", line)
	}
	if v := eval[string](tb, `document.querySelector('[data-widget="echo"] input').value`); v != "" {
		t.Errorf("the input holds %q after sending, want it empty", v)
	}
	if p := tb.problems(); len(p) > 0 {
		t.Errorf("the console has errors: %q", p)
	}
}

// A route that needs a token shows a token form instead of connecting;
// with the right token, given as a WebSocket subprotocol entry, the
// terminal connects and echoes.
func TestBrowserToken(t *testing.T) {
	_, page := startPageGateway(t, gateway.Route{
		Path:    "/secure",
		Service: service.Echo{},
		Auth:    &gateway.Auth{Tokens: [][32]byte{gateway.HashToken("s3cret")}},
	})
	const secure = `[data-widget="echo"][data-path="/secure"]`
	tb := startBrowser(t).newTab("first")
	tb.open(page)
	tb.waitFor("the token prompt", fmt.Sprintf(`document.querySelector(%s).dataset.state === "closed"`, js(secure)))
	tb.giveToken(secure, "s3cret")
	tb.connected(secure)
	tb.typeIn(secure, "past the door", true)
	tb.sees(secure, "in", "echo", "past the door")
	if p := tb.problems(); len(p) > 0 {
		t.Errorf("the console has errors: %q", p)
	}
}

// Two tabs and a porthole connect client (the binary) share
// the chat: a line from each reaches the other two, and lines arrive while
// a user is typing without disturbing what they type.
func TestBrowserChat(t *testing.T) {
	_, page := startPageGateway(t)
	term := dialChat(t, page+"chat")
	term.expect("* you are guest1; nobody else is here yet")

	b := startBrowser(t)
	a := b.newTab("A")
	a.open(page)
	a.connected(chatPanel)
	a.waitFor("A's name", `document.querySelector('[data-widget="chat"] .status').textContent === "Connected as guest2"`)
	term.expect("* guest2 joined")
	tabB := b.newTab("B")
	tabB.open(page)
	tabB.waitFor("B's name", `document.querySelector('[data-widget="chat"] .status').textContent === "Connected as guest3"`)
	term.expect("* guest3 joined")
	a.sees(chatPanel, "notice", "", "guest3 joined")

	a.typeIn(chatPanel, "hello from tab A", true)
	a.sees(chatPanel, "mine", "you", "hello from tab A")
	tabB.sees(chatPanel, "in", "guest2", "hello from tab A")
	term.expect("guest2: hello from tab A")

	tabB.typeIn(chatPanel, "and hello from tab B", true)
	a.sees(chatPanel, "in", "guest3", "and hello from tab B")
	term.expect("guest3: and hello from tab B")

	// A is typing when the terminal's line arrives.
	a.typeIn(chatPanel, "half a thought", false)
	term.say("hello from the terminal ✓\n")
	a.sees(chatPanel, "in", "guest1", "hello from the terminal ✓")
	tabB.sees(chatPanel, "in", "guest1", "hello from the terminal ✓")
	if v := eval[string](a, `document.querySelector('[data-widget="chat"] input').value`); v != "half a thought" {
		t.Fatalf("A's input holds %q after a line arrived, want %q", v, "half a thought")
	}
	a.typeIn(chatPanel, ", finished", true)
	tabB.sees(chatPanel, "in", "guest2", "half a thought, finished")
	term.expect("guest2: half a thought, finished")

	for _, tb := range []*tab{a, tabB} {
		if p := tb.problems(); len(p) > 0 {
			t.Errorf("tab %s: the console has errors: %q", tb.name, p)
		}
	}
	if *screenshot != "" {
		long := "a longer line, to see how a transcript wraps what does not fit on one line of the panel"
		a.typeIn(echoPanel, long, true)
		a.sees(echoPanel, "in", "echo", long)
		ctx, cancel := context.WithTimeout(a.ctx, patience)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	term.leave()
	a.sees(chatPanel, "notice", "", "guest1 left")
}

// When the gateway goes away, each panel says so and offers to reconnect.
func TestBrowserShowsDisconnect(t *testing.T) {
	g, page := startPageGateway(t)
	tb := startBrowser(t).newTab("first")
	tb.open(page)
	tb.connected(echoPanel)
	tb.connected(chatPanel)

	g.Stop(t, 100*time.Millisecond) // the open tunnels are closed at once
	for _, sel := range []string{echoPanel, chatPanel} {
		tb.waitFor(sel+" to show the disconnect", fmt.Sprintf(
			`(p => p.dataset.state === "closed" && p.querySelector(".status").textContent.startsWith("Disconnected: ") && !p.querySelector(".reconnect").hidden)(document.querySelector(%s))`, js(sel)))
	}
	tb.typeIn(echoPanel, "into the void", true)
	tb.waitFor("the echo terminal to refuse the line", `document.querySelector('[data-widget="echo"] .status').textContent === "Not connected: the line was not sent."`)
	if v := eval[string](tb, `document.querySelector('[data-widget="echo"] input').value`); v != "into the void" {
		t.Errorf("the input holds %q after a refused send, want the line kept", v)
	}
}

// chatClient is a terminal in the chat: the porthole binary running
// "porthole connect URL", its stdin and stdout the terminal's.
type chatClient struct {
	t     *testing.T
	in    io.WriteCloser
	lines chan string // stdout, line by line; closed at its end
}

// dialChat starts porthole connect to url; it is killed by its PID, if it
// still runs, when the test ends.
func dialChat(t *testing.T, url string) *chatClient {
	t.Helper()
	cmd := exec.Command(portholeBinary(t), "connect", url)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &chatClient{t: t, in: in, lines: make(chan string, 64)}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		close(done)
	}()
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	return c
}

func (c *chatClient) say(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, s); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads the next line, within patience, and checks it is want.
func (c *chatClient) expect(want string) {
	c.t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok || line != want {
			c.t.Fatalf("the terminal read %q (open: %v); want %q", line, ok, want)
		}
	case <-time.After(patience):
		c.t.Fatalf("the terminal read nothing in %v; want %q", patience, want)
	}
}

// leave ends the terminal's input, as Ctrl-D would.
func (c *chatClient) leave() { c.in.Close() }

// testWriter sends a process's stderr to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
