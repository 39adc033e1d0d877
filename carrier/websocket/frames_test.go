package websocket_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/internal/testgw"
)

// frame builds a masked client frame; fin false leaves a message open.
func frame(op byte, fin bool, payload string) testgw.Frame {
	return testgw.Frame{Fin: fin, Op: op, Masked: true, Payload: []byte(payload)}
}

// closeFrame is a client's Close with code and reason.
func closeFrame(code int, reason string) testgw.Frame {
	return testgw.ClientFrame(testgw.OpClose, testgw.ClosePayload(code, reason))
}

// TestHostileFrames sends, after a correct handshake, frames that break
// RFC 6455: each gets a Close with the right code and the connection
// ends; the gateway meanwhile keeps serving another tunnel, checked after
// each case.
func TestHostileFrames(t *testing.T) {
	gw := start(t, gateway.Options{})
	other := testgw.OpenWS(t, gw, false, "/echo")
	withRSV := func(rsv byte) testgw.Frame {
		f := frame(testgw.OpBinary, true, "reserved")
		f.RSV = rsv
		return f
	}
	for _, hc := range []struct {
		name   string
		frames []testgw.Frame
		code   int
	}{
		{"Unmasked", []testgw.Frame{{Fin: true, Op: testgw.OpBinary, Payload: []byte("bare")}}, 1002},
		{"UnmaskedEmpty", []testgw.Frame{{Fin: true, Op: testgw.OpBinary}}, 1002},
		{"RSV1", []testgw.Frame{withRSV(4)}, 1002},
		{"RSV2", []testgw.Frame{withRSV(2)}, 1002},
		{"RSV3", []testgw.Frame{withRSV(1)}, 1002},
		{"Opcode3", []testgw.Frame{frame(3, true, "x")}, 1002},
		{"Opcode7", []testgw.Frame{frame(7, true, "x")}, 1002},
		{"OpcodeB", []testgw.Frame{frame(0xB, true, "")}, 1002},
		{"OpcodeF", []testgw.Frame{frame(0xF, true, "x")}, 1002},
		{"FragmentedPing", []testgw.Frame{frame(testgw.OpPing, false, "a"), frame(testgw.OpContinuation, true, "b")}, 1002},
		{"FragmentedClose", []testgw.Frame{{Op: testgw.OpClose, Masked: true, Payload: testgw.ClosePayload(1000, "")}}, 1002},
		{"PingOver125", []testgw.Frame{frame(testgw.OpPing, true, strings.Repeat("p", 126))}, 1002},
		{"PongOver125", []testgw.Frame{frame(testgw.OpPong, true, strings.Repeat("p", 126))}, 1002},
		{"CloseOver125", []testgw.Frame{testgw.ClientFrame(testgw.OpClose, testgw.ClosePayload(1000, strings.Repeat("c", 124)))}, 1002},
		{"ContinuationFirst", []testgw.Frame{frame(testgw.OpContinuation, true, "orphan")}, 1002},
		{"ContinuationAfterEnd", []testgw.Frame{frame(testgw.OpBinary, true, "done"), frame(testgw.OpContinuation, true, "orphan")}, 1002},
		{"NewMessageInsideMessage", []testgw.Frame{frame(testgw.OpText, false, "a"), frame(testgw.OpBinary, true, "b")}, 1002},
		{"CloseCode0", []testgw.Frame{closeFrame(0, "")}, 1002},
		{"CloseCode999", []testgw.Frame{closeFrame(999, "")}, 1002},
		{"CloseCode1004", []testgw.Frame{closeFrame(1004, "")}, 1002},
		{"CloseCode1005", []testgw.Frame{closeFrame(1005, "")}, 1002},
		{"CloseCode1006", []testgw.Frame{closeFrame(1006, "")}, 1002},
		{"CloseCode1015", []testgw.Frame{closeFrame(1015, "")}, 1002},
		{"CloseCode1100", []testgw.Frame{closeFrame(1100, "")}, 1002},
		{"CloseCode2999", []testgw.Frame{closeFrame(2999, "")}, 1002},
		{"CloseCode5000", []testgw.Frame{closeFrame(5000, "")}, 1002},
		{"CloseCode65535", []testgw.Frame{closeFrame(65535, "")}, 1002},
		{"CloseReasonNotUTF8", []testgw.Frame{closeFrame(1000, "\xff\xfe")}, 1002},
		{"Claims2GiB", []testgw.Frame{{Fin: true, Op: testgw.OpBinary, Masked: true, Length: 2 << 30, Payload: []byte("a start")}}, 1009},
		{"Claims2GiBFragment", []testgw.Frame{frame(testgw.OpBinary, false, "ok"), {Op: testgw.OpContinuation, Masked: true, Length: 2 << 30}}, 1009},
		{"ClaimsTopBitLength", []testgw.Frame{{Fin: true, Op: testgw.OpBinary, Masked: true, Length: 1 << 63}}, 1002},
	} {
		t.Run(hc.name, func(t *testing.T) {
			ws := testgw.OpenWS(t, gw, false, "/echo")
			ws.Send(t, hc.frames...)
			ws.ExpectClose(t, hc.code)
			echoFrame(t, other, "still serving after "+hc.name)
		})
	}
}

// echoFrame sends msg as one binary message on a tunnel to the echo and
// reads it back.
func echoFrame(t *testing.T, ws *testgw.WS, msg string) {
	t.Helper()
	ws.Send(t, frame(testgw.OpBinary, true, msg))
	var got []byte
	for len(got) < len(msg) {
		f, err := ws.ReadFrame()
		if err != nil {
			t.Fatalf("reading the echo of %q: %v (got %q)", msg, err, got)
		}
		if f.Op != testgw.OpBinary && f.Op != testgw.OpContinuation {
			t.Fatalf("got opcode %d while reading the echo of %q", f.Op, msg)
		}
		got = append(got, f.Payload...)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// TestLegalFrames: what RFC 6455 allows is taken, not refused: a ping
// between a message's fragments (answered with a pong carrying its
// payload), empty fragments, a pong nobody asked for.
func TestLegalFrames(t *testing.T) {
	gw := start(t, gateway.Options{})
	ws := testgw.OpenWS(t, gw, false, "/echo")
	ws.Send(t,
		frame(testgw.OpBinary, false, "ab"),
		frame(testgw.OpPing, true, "between"),
		frame(testgw.OpContinuation, false, ""),
		frame(testgw.OpPong, true, "unasked"),
		frame(testgw.OpContinuation, true, "cd"),
		frame(testgw.OpBinary, true, ""),
		closeFrame(1000, "bye"),
	)
	var pong *testgw.Frame
	var data []byte
	for {
		f, err := ws.ReadFrame()
		if err != nil {
			t.Fatalf("reading: %v (data so far %q)", err, data)
		}
		if f.Op == testgw.OpPong {
			pong = &f
			continue
		}
		if f.Op == testgw.OpClose {
			break
		}
		data = append(data, f.Payload...)
	}
	if pong == nil || string(pong.Payload) != "between" {
		t.Errorf("pong = %+v, want one carrying %q", pong, "between")
	}
	if string(data) != "abcd" {
		t.Errorf("echo = %q, want %q", data, "abcd")
	}
}

// TestTextMessages: a text message reaches the service as its UTF-8
// bytes, also when a character is split across frames; invalid UTF-8
// (whole, split across fragments, or cut short at the message's end)
// closes with 1007, and only it.
func TestTextMessages(t *testing.T) {
	gw := start(t, gateway.Options{})
	// A text message larger than the relay's copy buffers, of 3-byte
	// characters, so that reads (of powers of two) end inside one.
	big := strings.Repeat("€", 100_000)
	for _, tc := range []struct {
		name   string
		frames []testgw.Frame
		want   string // the bytes echoed, for a valid message
		code   int    // the Close code; 1000 for a valid message
	}{
		{"ASCII", []testgw.Frame{frame(testgw.OpText, true, "plain text")}, "plain text", 1000},
		{"MultiByte", []testgw.Frame{frame(testgw.OpText, true, "héllo wörld ✓ 𝄞")}, "héllo wörld ✓ 𝄞", 1000},
		{"Empty", []testgw.Frame{frame(testgw.OpText, true, "")}, "", 1000},
		{"Fragmented", []testgw.Frame{frame(testgw.OpText, false, "frag"), frame(testgw.OpContinuation, false, "men"), frame(testgw.OpContinuation, true, "ted")}, "fragmented", 1000},
		{"RuneSplitAcrossFrames", []testgw.Frame{frame(testgw.OpText, false, "a\xe2\x82"), frame(testgw.OpContinuation, true, "\xacb")}, "a€b", 1000},
		{"RuneSplitThreeWays", []testgw.Frame{frame(testgw.OpText, false, "\xf0"), frame(testgw.OpContinuation, false, "\x9d\x84"), frame(testgw.OpContinuation, true, "\x9e!")}, "𝄞!", 1000},
		{"RuneSplitThenBinary", []testgw.Frame{frame(testgw.OpText, false, "\xc3"), frame(testgw.OpContinuation, true, "\xa9"), frame(testgw.OpBinary, true, "\xff")}, "é\xff", 1000},
		{"Large", []testgw.Frame{frame(testgw.OpText, true, big)}, big, 1000},
		{"LargeOddFragments", splitText(big, 32<<10+1), big, 1000},
		{"Invalid", []testgw.Frame{frame(testgw.OpText, true, "bad \xff byte")}, "", 1007},
		{"InvalidContinuation", []testgw.Frame{frame(testgw.OpText, false, "ab\xc3"), frame(testgw.OpContinuation, true, "(")}, "", 1007},
		{"InvalidInLaterFragment", []testgw.Frame{frame(testgw.OpText, false, "fine "), frame(testgw.OpContinuation, true, "then \xc0\xaf overlong")}, "", 1007},
		{"CutShortAtEnd", []testgw.Frame{frame(testgw.OpText, true, "ab\xe2\x82")}, "", 1007},
		{"CutShortAcrossFragments", []testgw.Frame{frame(testgw.OpText, false, "ab\xe2"), frame(testgw.OpContinuation, true, "\x82")}, "", 1007},
		{"Surrogate", []testgw.Frame{frame(testgw.OpText, true, "\xed\xa0\x80")}, "", 1007},
		{"BeyondUnicode", []testgw.Frame{frame(testgw.OpText, true, "\xf4\x90\x80\x80")}, "", 1007},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := testgw.OpenWS(t, gw, false, "/echo")
			ws.Send(t, tc.frames...)
			if tc.code == 1000 {
				ws.Send(t, closeFrame(1000, ""))
			}
			c := ws.ExpectClose(t, tc.code)
			if tc.code == 1000 && !bytes.Equal(c.Data, []byte(tc.want)) {
				t.Fatalf("echo = %d bytes %.40q, want %d bytes %.40q", len(c.Data), c.Data, len(tc.want), tc.want)
			}
			if tc.code != 1000 && !strings.Contains(c.Reason, "UTF-8") {
				t.Errorf("Close reason %q does not say UTF-8", c.Reason)
			}
		})
	}
}

// splitText cuts s into text message fragments of n bytes, ignoring
// character boundaries.
func splitText(s string, n int) []testgw.Frame {
	var frames []testgw.Frame
	op := byte(testgw.OpText)
	for len(s) > n {
		frames = append(frames, frame(op, false, s[:n]))
		s, op = s[n:], testgw.OpContinuation
	}
	return append(frames, frame(op, true, s))
}

// TestFragmentedBinary: a binary message in fragments reaches the service
// as one stream, in order.
func TestFragmentedBinary(t *testing.T) {
	gw := start(t, gateway.Options{})
	ws := testgw.OpenWS(t, gw, false, "/echo")
	var frames []testgw.Frame
	var want []byte
	for i := range 40 {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 1000+i*37)
		want = append(want, chunk...)
		op := byte(testgw.OpContinuation)
		if i == 0 {
			op = testgw.OpBinary
		}
		frames = append(frames, testgw.Frame{Fin: i == 39, Op: op, Masked: true, Payload: chunk})
	}
	ws.Send(t, frames...)
	ws.Send(t, closeFrame(1000, ""))
	if c := ws.ExpectClose(t, 1000); !bytes.Equal(c.Data, want) {
		t.Fatalf("echo of a fragmented message: %d bytes, want %d, equal prefix %d", len(c.Data), len(want), commonPrefix(c.Data, want))
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestMessageLimit: a message over gateway.Options.MaxMessageBytes, whole
// or in fragments, closes with 1009; one at the limit passes.
func TestMessageLimit(t *testing.T) {
	const limit = 1 << 10
	gw := start(t, gateway.Options{MaxMessageBytes: limit})
	at := strings.Repeat("x", limit)
	for _, tc := range []struct {
		name   string
		frames []testgw.Frame
		code   int
	}{
		{"AtLimit", []testgw.Frame{frame(testgw.OpBinary, true, at)}, 1000},
		{"AtLimitFragmented", []testgw.Frame{frame(testgw.OpBinary, false, at[:1000]), frame(testgw.OpContinuation, true, at[1000:])}, 1000},
		{"TwoAtLimit", []testgw.Frame{frame(testgw.OpBinary, true, at), frame(testgw.OpText, true, at)}, 1000},
		{"Over", []testgw.Frame{frame(testgw.OpBinary, true, at+"y")}, 1009},
		{"OverText", []testgw.Frame{frame(testgw.OpText, true, at+"y")}, 1009},
		{"OverFragmented", []testgw.Frame{frame(testgw.OpBinary, false, at[:1000]), frame(testgw.OpContinuation, false, at[1000:]), frame(testgw.OpContinuation, true, "y")}, 1009},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := testgw.OpenWS(t, gw, false, "/echo")
			ws.Send(t, tc.frames...)
			if tc.code == 1000 {
				ws.Send(t, closeFrame(1000, ""))
			}
			ws.ExpectClose(t, tc.code)
		})
	}
}

// TestOpenMessageForwarded: the bytes of a message reach the service as
// they arrive, while the message is still open: after a fragment, and in
// the middle of a frame whose rest has not come. The parts are sized to
// end away from the relay's buffer sizes.
func TestOpenMessageForwarded(t *testing.T) {
	gw := start(t, gateway.Options{})
	part := func(n int) []byte { return bytes.Repeat([]byte("p"), n) }
	for _, tc := range []struct {
		name  string
		sends []testgw.Frame // each sent, then its bytes awaited in the echo
	}{
		{"Fragments", []testgw.Frame{
			{Op: testgw.OpBinary, Masked: true, Payload: part(5)},
			{Op: testgw.OpContinuation, Masked: true, Payload: part(40_000)},
			{Op: testgw.OpContinuation, Masked: true, Payload: part(70_001)},
		}},
		{"PartOfAFrame", []testgw.Frame{
			{Fin: true, Op: testgw.OpBinary, Masked: true, Length: 1 << 20, Payload: part(40_000)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forBoth(t, func(t *testing.T, useTLS bool) {
				ws := testgw.OpenWS(t, gw, useTLS, "/echo")
				for i, f := range tc.sends {
					ws.Send(t, f)
					for got := 0; got < len(f.Payload); {
						echo, err := ws.ReadFrame()
						if err != nil {
							t.Fatalf("part %d: reading its echo: %v after %d of %d bytes", i, err, got, len(f.Payload))
						}
						got += len(echo.Payload)
					}
				}
			})
		})
	}
}

// TestClaimedLengthHeap: frames that claim 2 GiB do not make the
// gateway's heap grow with the claim: refused at the header under the
// default limit, and streamed (never buffered whole) under a limit that
// allows it. The gateway runs in this process, so runtime.MemStats sees
// its heap.
func TestClaimedLengthHeap(t *testing.T) {
	const claim = 2 << 30
	const tunnels = 8
	const slack = 16 << 20 // far below one claim, far above the tunnels' buffers
	for _, tc := range []struct {
		name  string
		limit int64
	}{
		{"Refused", 0},
		{"Streamed", 4 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := start(t, gateway.Options{MaxMessageBytes: tc.limit})
			before := heapInUse()
			var open []*testgw.WS
			for range tunnels {
				ws := testgw.OpenWS(t, gw, false, "/echo")
				ws.Send(t, testgw.Frame{Fin: true, Op: testgw.OpBinary, Masked: true, Length: claim, Payload: bytes.Repeat([]byte("z"), 64<<10)})
				open = append(open, ws)
			}
			for _, ws := range open {
				if tc.limit == 0 {
					ws.ExpectClose(t, 1009)
					continue
				}
				// The service has the bytes that came: the echo sends
				// them back while the message is still open.
				var got int
				for got < 64<<10 {
					f, err := ws.ReadFrame()
					if err != nil {
						t.Fatalf("reading the echo of a streamed message: %v after %d bytes", err, got)
					}
					got += len(f.Payload)
				}
			}
			after := heapInUse()
			t.Logf("heap in use: %d KiB before, %d KiB with %d tunnels that claimed %d GiB each", before>>10, after>>10, tunnels, claim>>30)
			if after > before+slack {
				t.Fatalf("the heap grew by %d MiB for frames claiming %d GiB", (after-before)>>20, claim>>30)
			}
		})
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
