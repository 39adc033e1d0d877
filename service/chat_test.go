package service_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// participant is one end of a chat tunnel, read line by line.
type participant struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// chatRoute runs a gateway whose /chat route is room and returns its URL.
func chatRoute(t *testing.T, room *service.Chat) string {
	g := testgw.Start(t, gateway.Options{Routes: []gateway.Route{{Path: "/chat", Service: room}}})
	return g.URL + "/chat"
}

// join dials url and checks the welcome line, which names the newcomer
// and who else is there.
func join(t *testing.T, url, welcome string) *participant {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	conn, err := porthole.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(waitLimit))
	p := &participant{t: t, conn: conn, r: bufio.NewReader(conn)}
	p.expect(welcome)
	return p
}

func (p *participant) say(text string) {
	p.t.Helper()
	if _, err := io.WriteString(p.conn, text); err != nil {
		p.t.Fatalf("sending %q: %v", text, err)
	}
}

// expect reads the next lines and checks they are want, in order.
func (p *participant) expect(want ...string) {
	p.t.Helper()
	for _, w := range want {
		line, err := p.r.ReadString('\n')
		if err != nil || line != w+"\n" {
			p.t.Fatalf("read %q, %v; want %q", line, err, w+"\n")
		}
	}
}

// expectEOF checks that nothing more comes and the stream ends.
func (p *participant) expectEOF() {
	p.t.Helper()
	if rest, err := io.ReadAll(p.r); err != nil || len(rest) > 0 {
		p.t.Fatalf("read %q, %v; want EOF", rest, err)
	}
}

// A line reaches every other participant with its sender's name, and not
// the sender; joins and leaves are announced; a half-close ends the
// participant after its last line (even without "\n") and the lines
// already queued for it.
func TestChatBroadcast(t *testing.T) {
	url := chatRoute(t, &service.Chat{})
	a := join(t, url, "* you are guest1; nobody else is here yet")
	b := join(t, url, "* you are guest2; also here: guest1")
	a.expect("* guest2 joined")
	c := join(t, url, "* you are guest3; also here: guest1, guest2")
	a.expect("* guest3 joined")
	b.expect("* guest3 joined")

	a.say("hello from a\n")
	b.expect("guest1: hello from a")
	b.say("hi a, b here\r\n")
	c.expect("guest1: hello from a", "guest2: hi a, b here")
	a.expect("guest2: hi a, b here") // and not its own line before it

	c.say("c says bye")
	c.conn.(interface{ CloseWrite() error }).CloseWrite()
	c.expectEOF()
	for _, p := range []*participant{a, b} {
		p.expect("guest3: c says bye", "* guest3 left")
	}

	b.conn.Close()
	a.expect("* guest2 left")
	a.say("alone\n")
	a.conn.(interface{ CloseWrite() error }).CloseWrite()
	a.expectEOF()
}

// Control characters and invalid UTF-8 become U+FFFD, empty lines are not
// sent, and a line over MaxLine is cut at a character boundary, its rest
// dropped and its sender told.
func TestChatCleansAndCutsLines(t *testing.T) {
	url := chatRoute(t, &service.Chat{MaxLine: 16})
	a := join(t, url, "* you are guest1; nobody else is here yet")
	b := join(t, url, "* you are guest2; also here: guest1")
	a.expect("* guest2 joined")

	a.say("\x1b[31mred\x07\xff\r\n\n\r\n")
	b.expect("guest1: \uFFFD[31mred\uFFFD\uFFFD")

	a.say("a" + strings.Repeat("é", 20) + "\n")                // cut inside an é: back to 15 bytes
	a.say(strings.Repeat("x", 16) + "\r\n")                    // exactly the limit: whole
	a.say(strings.Repeat("y", 17) + "\n" + "after the cut\n")  // one over
	a.say(strings.Repeat("z", 100) + strings.Repeat("w", 100)) // more than the reader's buffer, then EOF
	a.conn.(interface{ CloseWrite() error }).CloseWrite()
	b.expect(
		"guest1: a"+strings.Repeat("é", 7),
		"guest1: "+strings.Repeat("x", 16),
		"guest1: "+strings.Repeat("y", 16),
		"guest1: after the cut",
		"guest1: "+strings.Repeat("z", 16),
		"* guest1 left",
	)
	a.expect("* your line was cut to 16 bytes", "* your line was cut to 16 bytes", "* your line was cut to 16 bytes")
	a.expectEOF()
}

// A participant that does not read is dropped once its queue is full: its
// tunnel is closed, the others are told, Serve says why, and the sender
// goes on.
func TestChatDropsSlowReader(t *testing.T) {
	room := &service.Chat{Queue: 2, Rate: -1}
	type served struct {
		st  service.Stats
		err error
	}
	start := func() (net.Conn, <-chan served) {
		be, err := room.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		client, tun := pair(t)
		done := make(chan served, 1)
		go func() {
			st, err := be.Serve(tun)
			done <- served{st, err}
		}()
		return client, done
	}
	slow, slowDone := start()
	// Wait until the slow one is in the room before the sender joins.
	sr := bufio.NewReader(slow)
	if line, err := sr.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* you are guest1;") {
		t.Fatalf("slow participant's welcome: %q, %v", line, err)
	}
	sender, senderDone := start()
	r := bufio.NewReader(sender)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		line := strings.Repeat("flood ", 600) + "\n"
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := io.WriteString(sender, line); err != nil {
				return
			}
		}
	})
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the sender read %v before the slow participant was dropped", err)
		}
		if line == "* guest1 was dropped: it read too slowly\n" {
			break
		}
	}
	close(stop)
	wg.Wait()

	s := <-slowDone
	if !errors.Is(s.err, service.ErrTooSlow) || !strings.Contains(s.err.Error(), "guest1") {
		t.Errorf("the slow participant's Serve: %v, want an error naming guest1 and wrapping ErrTooSlow", s.err)
	}
	if _, err := io.Copy(io.Discard, sr); err != nil {
		t.Errorf("the slow participant's stream ended with %v, want EOF after what was sent before the drop", err)
	}
	sender.Close()
	if s := <-senderDone; s.err != nil && !errors.Is(s.err, net.ErrClosed) {
		t.Logf("the sender's Serve: %v", s.err)
	}
}

// Lines beyond the burst are paced, not lost or reordered.
func TestChatPacesFloods(t *testing.T) {
	const burst, rate, lines = 4, 200, 40
	url := chatRoute(t, &service.Chat{Burst: burst, Rate: rate})
	a := join(t, url, "* you are guest1; nobody else is here yet")
	b := join(t, url, "* you are guest2; also here: guest1")
	a.expect("* guest2 joined")

	var flood, want strings.Builder
	for i := range lines {
		fmt.Fprintf(&flood, "line %d\n", i)
		fmt.Fprintf(&want, "guest1: line %d\n", i)
	}
	start := time.Now()
	a.say(flood.String())
	for _, w := range strings.SplitAfter(want.String(), "\n") {
		if w != "" {
			b.expect(strings.TrimSuffix(w, "\n"))
		}
	}
	if min := time.Duration(lines-burst) * time.Second / rate; time.Since(start) < min*9/10 {
		t.Errorf("%d lines arrived in %v; pacing at %d a second after %d should take %v", lines, time.Since(start), rate, burst, min)
	}
}
