package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/porthole/porthole/internal/netutil"
)

// Chat is the built-in broadcast service behind the page's chat panel: one
// room, shared by every tunnel opened through the same Chat value. Each
// tunnel is a participant, given a name (guest1, guest2, …) when it
// starts.
//
// The protocol is lines of UTF-8 ending in "\n", both ways:
//
//   - A line a participant sends reaches every other participant as
//     "NAME: TEXT\n". It is not sent back to its sender: a terminal or the
//     page already shows what its user typed, so each participant's
//     transcript is its own lines plus everyone else's.
//   - Lines from the room start with "* ": the first one a participant gets
//     is "* you are NAME; …" naming who else is there, then "* NAME joined"
//     and "* NAME left" (with the reason, when the room dropped them).
//   - A trailing "\r" is removed (telnet sends "\r\n") and empty lines are
//     not sent. Control characters and invalid UTF-8 become U+FFFD, so no
//     participant can drive another's terminal.
//   - A line longer than MaxLine bytes is cut to MaxLine bytes (at a
//     character boundary); the rest of it, up to its "\n", is dropped and
//     the sender is told. A last line without "\n" before EOF is sent.
//
// Full duplex without head-of-line blocking: the lines for a participant
// wait in its own queue of at most Queue lines. One whose queue is full when
// a line arrives reads too slowly; it is dropped (its tunnel closed, the
// others told, Serve's error wrapping ErrTooSlow) rather than slowing the
// room or growing memory. Memory per participant is thus bounded by Queue
// lines of at most MaxLine bytes (plus a name).
//
// Against floods, as IRC servers do, each participant's lines are paced:
// Burst lines at once, then Rate lines a second. A participant that sends
// faster (a pasted file, say) is read more slowly, so TCP pushes back on it
// alone, and its burst alone cannot fill a reader's queue.
//
// A participant leaves when it half-closes or ends its stream: it is
// removed from the room at once, gets the lines already queued for it, and
// then its tunnel is half-closed.
//
// The zero value is an empty room ready to use. A Chat must not be copied
// after first use.
type Chat struct {
	// MaxLine caps the bytes of one line's text. Zero means 4 KiB.
	MaxLine int
	// Queue caps the lines waiting to be written to one participant. Zero
	// means 64.
	Queue int
	// Burst is how many lines a participant may send at once before Rate
	// paces it. Zero means 32.
	Burst int
	// Rate is how many lines a second a participant may send after its
	// burst. Zero means 16; a negative Rate turns pacing off.
	Rate float64

	mu      sync.Mutex
	members map[*member]struct{}
	joined  int // participants so far; names them
}

const (
	defaultMaxLine = 4 << 10
	defaultQueue   = 64
	defaultBurst   = 32
	defaultRate    = 16
	// maxListed caps the names in the welcome line.
	maxListed = 20
)

// ErrTooSlow is why a participant was dropped when its queue of lines was
// full; Serve's error wraps it.
var ErrTooSlow = errors.New("the participant reads too slowly")

// Open returns a participant's backend; it cannot fail. The participant
// joins the room when its tunnel starts.
func (c *Chat) Open(context.Context) (Backend, error) { return chatBackend{c}, nil }

// String returns "chat".
func (*Chat) String() string { return "chat" }

// member is one participant.
type member struct {
	id   int // order of joining
	name string
	out  chan []byte   // lines to write; closed when it leaves the room
	gone chan struct{} // closed when the room drops it; why says why
	why  error
}

type chatBackend struct{ c *Chat }

func (chatBackend) Close() error { return nil }

// Serve makes tun a participant until it leaves or is dropped, then closes
// tun.
func (b chatBackend) Serve(tun net.Conn) (Stats, error) {
	c := b.c
	m := c.join()

	var st Stats
	var werr error
	wrote := make(chan struct{})
	go func() {
		st.Out, werr = c.writeLoop(m, tun)
		close(wrote)
	}()
	read := make(chan error, 1)
	go func() {
		var err error
		st.In, err = c.readLoop(m, tun)
		read <- err
	}()

	var err error
	select {
	case rerr := <-read:
		c.leave(m, nil)
		if rerr != nil {
			err = fmt.Errorf("chat: reading from %s: %w", m.name, rerr)
			tun.Close()
		}
		<-wrote
	case <-m.gone:
		tun.Close()
		<-read
		<-wrote
		err = m.why
	}
	tun.Close()
	if err == nil && werr != nil {
		err = fmt.Errorf("chat: writing to %s: %w", m.name, werr)
	}
	return st, err
}

// readLoop reads m's lines from tun and sends each to the room, paced,
// until EOF (nil) or an error.
func (c *Chat) readLoop(m *member, tun net.Conn) (int64, error) {
	maxLine := c.maxLine()
	r := bufio.NewReaderSize(tun, maxLine+2) // the text, "\r", "\n"
	p := c.pacer()
	var n int64
	for {
		line, err := r.ReadSlice('\n')
		n += int64(len(line))
		text, cut := clean(line, maxLine)
		for errors.Is(err, bufio.ErrBufferFull) { // drop the rest of a long line
			cut = true
			line, err = r.ReadSlice('\n')
			n += int64(len(line))
		}
		if len(text) > 0 {
			if !p.wait(m.gone) {
				return n, nil
			}
			c.say(m, text)
		}
		if cut {
			c.tell(m, fmt.Sprintf("* your line was cut to %d bytes", maxLine))
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// writeLoop writes m's queued lines to tun until m leaves the room, then
// half-closes tun; it stops early when m is dropped.
func (c *Chat) writeLoop(m *member, tun net.Conn) (int64, error) {
	var n int64
	for line := range m.out {
		select {
		case <-m.gone:
			return n, nil
		default:
		}
		k, err := tun.Write(line)
		n += int64(k)
		if err != nil {
			c.leave(m, fmt.Errorf("chat: dropped %s: writing to it failed: %w", m.name, err))
			return n, err
		}
	}
	select {
	case <-m.gone:
	default:
		netutil.CloseWrite(tun) // a tunnel that cannot half-close is closed by Serve
	}
	return n, nil
}

// clean returns a line's text, without its "\r\n" or "\n", with control
// characters and invalid UTF-8 replaced by U+FFFD, and cut to max bytes at
// a character boundary; cut reports whether it was. text does not alias
// line.
func clean(line []byte, max int) (text []byte, cut bool) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r >= 0x7f && r < 0xa0 {
			return utf8.RuneError
		}
		return r
	}, s) // strings.Map also turns invalid UTF-8 into U+FFFD
	if len(s) > max {
		i := max
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		return []byte(s[:i]), true
	}
	return []byte(s), false
}

func (c *Chat) maxLine() int {
	if c.MaxLine > 0 {
		return c.MaxLine
	}
	return defaultMaxLine
}

// join adds a participant, queues its welcome and tells the others.
func (c *Chat) join() *member {
	queue := c.Queue
	if queue <= 0 {
		queue = defaultQueue
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.members == nil {
		c.members = make(map[*member]struct{})
	}
	c.joined++
	m := &member{
		id:   c.joined,
		name: fmt.Sprintf("guest%d", c.joined),
		out:  make(chan []byte, queue),
		gone: make(chan struct{}),
	}
	others := slices.SortedFunc(maps.Keys(c.members), func(a, b *member) int { return a.id - b.id })
	c.members[m] = struct{}{}
	m.out <- []byte(welcome(m.name, others))
	c.broadcastLocked(m, []byte("* "+m.name+" joined\n"))
	return m
}

// welcome is the first line a participant gets, naming the others in the
// order they joined.
func welcome(name string, others []*member) string {
	var names []string
	for _, o := range others[:min(len(others), maxListed)] {
		names = append(names, o.name)
	}
	switch {
	case len(others) == 0:
		return "* you are " + name + "; nobody else is here yet\n"
	case len(others) > maxListed:
		return fmt.Sprintf("* you are %s; also here: %s and %d more\n", name, strings.Join(names, ", "), len(others)-maxListed)
	default:
		return "* you are " + name + "; also here: " + strings.Join(names, ", ") + "\n"
	}
}

// say sends m's line of text to the others.
func (c *Chat) say(m *member, text []byte) {
	line := make([]byte, 0, len(m.name)+2+len(text)+1)
	line = append(append(append(append(line, m.name...), ": "...), text...), '\n')
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.members[m]; ok {
		c.broadcastLocked(m, line)
	}
}

// tell queues a line from the room for m alone.
func (c *Chat) tell(m *member, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.members[m]; ok {
		c.sendLocked(m, []byte(text+"\n"))
	}
}

// leave removes m from the room and tells the others. A nil why is a
// clean leave: m's queued lines are still written. Otherwise m is dropped:
// gone is closed and Serve closes its tunnel.
func (c *Chat) leave(m *member, why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(m, why)
}

func (c *Chat) removeLocked(m *member, why error) {
	if _, ok := c.members[m]; !ok {
		return
	}
	delete(c.members, m)
	close(m.out)
	note := "* " + m.name + " left\n"
	if why != nil {
		m.why = why
		close(m.gone)
		note = "* " + m.name + " was dropped: " + reason(why) + "\n"
	}
	c.broadcastLocked(nil, []byte(note))
}

// reason is the short form of why a participant was dropped, for the room.
func reason(why error) string {
	if errors.Is(why, ErrTooSlow) {
		return "it read too slowly"
	}
	return "its connection failed"
}

// broadcastLocked queues line for every participant but from.
func (c *Chat) broadcastLocked(from *member, line []byte) {
	var slow []*member
	for m := range c.members {
		if m != from && !c.trySendLocked(m, line) {
			slow = append(slow, m)
		}
	}
	for _, m := range slow {
		c.removeLocked(m, tooSlow(m))
	}
}

// sendLocked queues line for m, dropping m when its queue is full.
func (c *Chat) sendLocked(m *member, line []byte) {
	if !c.trySendLocked(m, line) {
		c.removeLocked(m, tooSlow(m))
	}
}

func tooSlow(m *member) error {
	return fmt.Errorf("chat: dropped %s: %w (%d lines were waiting for it)", m.name, ErrTooSlow, cap(m.out))
}

func (c *Chat) trySendLocked(m *member, line []byte) bool {
	select {
	case m.out <- line:
		return true
	default:
		return false
	}
}
