package websocket_test

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
	"github.com/porthole/porthole/service"
)

// fuzzLimit is the fuzzed gateway's MaxMessageBytes: small, so that the
// fuzzer reaches it.
const fuzzLimit = 4 << 10

// maxFuzzFrames bounds the bytes one input sends after the handshake:
// far below what the sockets buffer, so the gateway's echo never waits
// on this client, which reads only once it has sent everything.
const maxFuzzFrames = 64 << 10

// fuzzMask is the masking key of the frames the fuzz target builds
// (RFC 6455's example key).
var fuzzMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// buildFrames turns a fuzz input into the bytes sent after the
// handshake. An input whose first byte is even is sent as it is, after
// that byte. Otherwise it describes frames, each as: the first header
// byte as sent (FIN, RSV, opcode); a byte whose top bit set means
// unmasked and whose low 7 bits are the length field (126 and 127 take
// the extended length from the next one or two bytes, written in the
// 16 or 64 bits form even when shorter would do; 127 with the top bit of
// that byte set claims a length over fuzzLimit, or one with the top bit
// set, and carries no payload); then the payload, from the input,
// padded with 'x' when the input runs out.
func buildFrames(in []byte) []byte {
	if len(in) == 0 || in[0]&1 == 0 {
		if len(in) > 0 {
			in = in[1:]
		}
		return in
	}
	in = in[1:]
	next := func() byte {
		if len(in) == 0 {
			return 0
		}
		b := in[0]
		in = in[1:]
		return b
	}
	var out []byte
	for len(in) > 0 && len(out) < maxFuzzFrames {
		b0, b1 := next(), next()
		masked := b1&0x80 == 0
		field := b1 & 0x7f
		var n uint64
		claim := false
		head := []byte{b0, 0}
		switch field {
		case 126:
			n = uint64(next())<<4 | uint64(next())
			head = binary.BigEndian.AppendUint16(head, uint16(n))
		case 127:
			x := next()
			switch {
			case x&0xc0 == 0xc0:
				n, claim = 1<<63|uint64(x), true
			case x&0x80 != 0:
				n, claim = fuzzLimit+1+uint64(x&0x7f)<<8, true
			default:
				n = uint64(x)
			}
			head = binary.BigEndian.AppendUint64(head, n)
		default:
			n = uint64(field)
		}
		head[1] = field
		if masked {
			head[1] |= 0x80
		}
		out = append(out, head...)
		if masked {
			out = append(out, fuzzMask[:]...)
		}
		if claim {
			continue
		}
		for i := range int(n) {
			c := byte('x')
			if len(in) > 0 {
				c = next()
			}
			if masked {
				c ^= fuzzMask[i%4]
			}
			out = append(out, c)
		}
	}
	return out
}

// outcome is what the gateway must do with a stream of client frames.
type outcome struct {
	code     int    // the Close code the gateway sends
	data     []byte // the data the stream carried, unmasked
	complete int    // how much of data the gateway must echo at least
	exact    bool   // it must echo all of data, no more
}

// expectFrames works out what the gateway must answer to stream, sent
// after a handshake and followed by the end of the connection's writing
// side. It reads the frames as RFC 6455 and the gateway's choices say
// (the first error wins; gorilla/websocket checks a frame's first two
// bytes, then its length, then the message limit; text must be UTF-8):
//
//   - a protocol error (reserved bits, unknown opcode, unmasked, a
//     fragmented or over-125-byte control frame, a data frame in a
//     message or a continuation outside one, a length with its top bit
//     set, a Close with a code no endpoint may send or a reason that is
//     not UTF-8) is 1002; a message over the limit is 1009; invalid UTF-8
//     in a text message (seen as soon as its bytes arrive, or as the
//     message ends cut short) is 1007. The echo then holds at least the
//     messages ended before, and is a prefix of the data;
//   - a Close the gateway accepts, or the end of the stream (also in a
//     frame), ends the client's stream: the gateway closes with 1000. After
//     a Close, the echo is all the data but an incomplete character
//     ending a text message in progress (it is no text yet); after the
//     stream's end, at least the messages ended before.
//
// A Close with a one-byte body, which RFC 6455 forbids, is taken as a
// Close without a code: gorilla/websocket reads it so.
func expectFrames(stream []byte) outcome {
	var o outcome
	inMessage, text := false, false
	var msgLen uint64
	var msg []byte // the text message in progress
	fail := func(code int) outcome {
		o.code = code
		return o
	}
	for {
		if len(stream) < 2 {
			o.code = 1000
			return o
		}
		b0, b1 := stream[0], stream[1]
		stream = stream[2:]
		fin, rsv, op := b0&0x80 != 0, b0&0x70, b0&0x0f
		masked, n := b1&0x80 != 0, uint64(b1&0x7f)
		control := op >= 8
		bad := rsv != 0 || !masked
		switch op {
		case 0x8, 0x9, 0xA:
			bad = bad || n > 125 || !fin
		case 0x1, 0x2:
			bad = bad || inMessage
		case 0x0:
			bad = bad || !inMessage
		default:
			bad = true
		}
		if bad {
			return fail(1002)
		}
		ext := map[uint64]int{126: 2, 127: 8}[n]
		if len(stream) < ext {
			o.code = 1000
			return o
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(stream))
		case 8:
			n = binary.BigEndian.Uint64(stream)
		}
		stream = stream[ext:]
		if n>>63 != 0 {
			return fail(1002)
		}
		if len(stream) < 4 {
			o.code = 1000
			return o
		}
		key := stream[:4]
		stream = stream[4:]
		if !control {
			if op != 0 {
				inMessage, text, msgLen, msg = true, op == 1, 0, nil
			}
			msgLen += n
			if msgLen > fuzzLimit {
				return fail(1009)
			}
		}
		payload := bytes.Clone(stream[:min(n, uint64(len(stream)))])
		stream = stream[len(payload):]
		for i := range payload {
			payload[i] ^= key[i%4]
		}
		cut := uint64(len(payload)) < n
		if control {
			if cut {
				o.code = 1000
				return o
			}
			if op != 0x8 {
				continue
			}
			if len(payload) >= 2 {
				code := int(binary.BigEndian.Uint16(payload))
				if !validReceivedCode(code) || !utf8.Valid(payload[2:]) {
					return fail(1002)
				}
			}
			if text {
				o.data = o.data[:len(o.data)-heldBack(msg)]
			}
			o.code, o.complete, o.exact = 1000, len(o.data), true
			return o
		}
		o.data = append(o.data, payload...)
		if text {
			msg = append(msg, payload...)
			if !utf8.Valid(msg[:len(msg)-heldBack(msg)]) {
				return fail(1007)
			}
		}
		if cut {
			o.code = 1000
			return o
		}
		if fin {
			if text && heldBack(msg) > 0 {
				return fail(1007)
			}
			inMessage, text = false, false
			o.complete = len(o.data)
		}
	}
}

// heldBack is how many bytes at the end of text are the start of a
// character still incomplete: what the gateway holds back for the next
// bytes.
func heldBack(text []byte) int {
	for i := len(text) - 1; i >= 0 && i >= len(text)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(text[i]) {
			if !utf8.FullRune(text[i:]) {
				return len(text) - i
			}
			return 0
		}
	}
	return 0
}

// validReceivedCode reports whether a Close may carry code (RFC 6455
// section 7.4 and IANA's registry, as gorilla/websocket reads them).
func validReceivedCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1013:
		return true
	}
	return code >= 3000 && code <= 4999
}

// FuzzFrames sends, after a valid handshake with a real gateway (the
// built-in echo, a 4 KiB message limit, no pings), the bytes
// buildFrames makes of the input, then ends its writing side, and reads
// what the gateway sends until its Close. The gateway must answer within
// testgw.WaitLimit with well-formed frames (unmasked, no reserved bits,
// data in order: ReadUntilClose checks), with the Close code and echo
// expectFrames works out, and then end the connection sending nothing
// more; meanwhile another tunnel, open from the start, still echoes.
func FuzzFrames(f *testing.F) {
	frame := func(f testgw.Frame) []byte { return f.Bytes() }
	msg := func(op byte, fin bool, p string) []byte {
		return frame(testgw.Frame{Fin: fin, Op: op, Masked: true, Payload: []byte(p)})
	}
	closing := func(code int, reason string) []byte {
		return frame(testgw.ClientFrame(testgw.OpClose, testgw.ClosePayload(code, reason)))
	}
	raw := func(parts ...[]byte) []byte { return append([]byte{0}, bytes.Join(parts, nil)...) }
	for _, s := range [][]byte{
		raw(),
		raw(msg(testgw.OpBinary, true, "hello"), closing(1000, "")),
		raw(msg(testgw.OpBinary, true, "no close, the connection just ends")),
		raw(msg(testgw.OpText, false, "frag"), msg(testgw.OpContinuation, false, "men"), msg(testgw.OpContinuation, true, "ted"), closing(1000, "bye")),
		raw(msg(testgw.OpBinary, false, "ab"), msg(testgw.OpPing, true, "between"), msg(testgw.OpContinuation, true, "cd"), msg(testgw.OpPong, true, "unasked"), closing(1001, "")),
		raw(msg(testgw.OpText, false, "a\xe2\x82"), msg(testgw.OpContinuation, true, "\xacb"), closing(3000, "app")),
		raw(msg(testgw.OpText, true, "bad \xff byte")),
		raw(msg(testgw.OpText, false, "ab\xe2"), msg(testgw.OpContinuation, true, "\x82")),
		raw(msg(testgw.OpText, false, "held \xe2\x82"), closing(1000, "")),
		raw(frame(testgw.Frame{Fin: true, Op: testgw.OpBinary, Payload: []byte("unmasked")})),
		raw(frame(testgw.Frame{Fin: true, RSV: 4, Op: testgw.OpBinary, Masked: true, Payload: []byte("rsv1")})),
		raw(msg(3, true, "x"), msg(0xB, true, "")),
		raw(msg(testgw.OpPing, false, "a")),
		raw(msg(testgw.OpPing, true, string(make([]byte, 126)))),
		raw(msg(testgw.OpContinuation, true, "orphan")),
		raw(msg(testgw.OpText, false, "a"), msg(testgw.OpBinary, true, "b")),
		raw(closing(1005, "")),
		raw(closing(1000, "\xff\xfe")),
		raw(frame(testgw.ClientFrame(testgw.OpClose, []byte{3}))),
		raw(frame(testgw.ClientFrame(testgw.OpClose, nil))),
		raw(frame(testgw.Frame{Fin: true, Op: testgw.OpBinary, Masked: true, Length: 2 << 30, Payload: []byte("a start")})),
		raw(frame(testgw.Frame{Fin: true, Op: testgw.OpBinary, Masked: true, Length: 1 << 63})),
		raw(msg(testgw.OpBinary, true, string(make([]byte, fuzzLimit))), msg(testgw.OpBinary, true, string(make([]byte, fuzzLimit+1)))),
		raw(msg(testgw.OpBinary, true, "cut")[:6]),
		// Structured: a binary frame of 5 bytes, a ping of 2, a text frame in
		// the 16 bits form, a claim over the limit.
		{1, 0x82, 5, 'h', 'e', 'l', 'l', 'o', 0x89, 2, 'p', 'i', 0x81, 126, 0, 3, 'a', 'b', 'c', 0x82, 127, 0x80},
		{1, 0x88, 2, 0x03, 0xe8, 0x82, 3, 'a', 'f', 't'},
		{1, 0x82, 0x83, 'a', 'b', 'c'},
		{1, 0x82, 127, 0xc1},
	} {
		f.Add(s)
	}
	gw := testgw.Start(f, gateway.Options{
		Routes:          []gateway.Route{{Path: "/echo", Service: service.Echo{}}},
		MaxMessageBytes: fuzzLimit,
		PingInterval:    -1,
		Logger:          slog.New(slog.DiscardHandler),
	})
	other := testgw.OpenWS(f, gw, false, "/echo")
	f.Fuzz(func(t *testing.T, in []byte) {
		stream := buildFrames(in)
		if len(stream) > maxFuzzFrames {
			return
		}
		want := expectFrames(stream)
		ws := testgw.OpenWS(t, gw, false, "/echo")
		defer ws.Conn.Close()
		if _, err := ws.Conn.Write(stream); err != nil && !testgw.IsReset(err) {
			t.Fatalf("sending %d bytes of frames: %v", len(stream), err)
		}
		ws.Conn.(*net.TCPConn).CloseWrite()
		got := ws.ReadUntilClose(t)
		if got.Code != want.code {
			t.Fatalf("the gateway closed with %d %q, want %d (stream %q)", got.Code, got.Reason, want.code, stream)
		}
		if !utf8.ValidString(got.Reason) {
			t.Fatalf("Close reason %q is not UTF-8", got.Reason)
		}
		switch {
		case want.exact && !bytes.Equal(got.Data, want.data):
			t.Fatalf("echo = %q, want %q", got.Data, want.data)
		case !bytes.HasPrefix(want.data, got.Data) || len(got.Data) < want.complete:
			t.Fatalf("echo = %q, want a prefix of %q at least %d bytes long", got.Data, want.data, want.complete)
		}
		ws.ExpectEnd(t)
		other.Conn.SetDeadline(time.Now().Add(testgw.WaitLimit))
		echoFrame(t, other, "still serving")
	})
}

// TestCloseSurvivesUnreadBytes: a client that sends messages, then a frame
// that ends its stream (one breaking RFC 6455, or its Close), then more
// bytes, gets the echo of every message before that frame and the
// gateway's Close, not a reset. FuzzFrames found both: closing the
// connection with the client's bytes unread makes the kernel answer with a
// reset, and the reset destroys what the client has not read yet, the
// Close frame included.
func TestCloseSurvivesUnreadBytes(t *testing.T) {
	gw := start(t, gateway.Options{PingInterval: -1})
	const messages = 200
	for _, end := range []struct {
		name  string
		frame testgw.Frame
		code  int
	}{
		{"protocol error", frame(3, true, "bad opcode"), 1002},
		{"Close, then more", testgw.ClientFrame(testgw.OpClose, testgw.ClosePayload(1000, "")), 1000},
	} {
		t.Run(end.name, func(t *testing.T) {
			var stream []byte
			for range messages {
				stream = append(stream, frame(testgw.OpBinary, true, "e").Bytes()...)
			}
			stream = append(stream, end.frame.Bytes()...)
			stream = append(stream, bytes.Repeat([]byte{0x82}, 16<<10)...)
			for range 5 {
				ws := testgw.OpenWS(t, gw, false, "/echo")
				if _, err := ws.Conn.Write(stream); err != nil {
					t.Fatal(err)
				}
				ws.Conn.(*net.TCPConn).CloseWrite()
				c := ws.ReadUntilClose(t)
				if c.Code != end.code || len(c.Data) != messages {
					t.Fatalf("the gateway echoed %d bytes and closed with %d %q; want %d bytes and %d", len(c.Data), c.Code, c.Reason, messages, end.code)
				}
				ws.ExpectEnd(t)
				ws.Conn.Close()
			}
		})
	}
}
