package testgw

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// WSKey is the Sec-WebSocket-Key of RFC 6455's example, and WSAccept the
// Sec-WebSocket-Accept that answers it.
const (
	WSKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	WSAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// AcceptKey computes the Sec-WebSocket-Accept answering key, as RFC 6455
// section 4.2.2 defines it.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// WSRequest is a valid WebSocket handshake request head for path on
// host, with WSKey as its key.
func WSRequest(host, path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + WSKey + "\r\n\r\n"
}

// A Frame is one WebSocket frame, written exactly as given: tests use it
// to send what no library would.
type Frame struct {
	Fin     bool
	RSV     byte // the three reserved bits, 0 to 7
	Op      byte // opcode, 0 to 15
	Masked  bool // clients must mask; a zero Frame is unmasked
	Payload []byte
	// Length, when non-zero, is the payload length the header claims
	// instead of len(Payload).
	Length uint64
}

// ClientFrame is a final, masked frame, as a client sends.
func ClientFrame(op byte, payload []byte) Frame {
	return Frame{Fin: true, Op: op, Masked: true, Payload: payload}
}

// ClosePayload is a Close frame's body: the code and the reason.
func ClosePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// Bytes encodes f.
func (f Frame) Bytes() []byte {
	b0 := f.RSV<<4 | f.Op&0xf
	if f.Fin {
		b0 |= 0x80
	}
	n := f.Length
	if n == 0 {
		n = uint64(len(f.Payload))
	}
	var b1 byte
	if f.Masked {
		b1 = 0x80
	}
	out := []byte{b0}
	switch {
	case n < 126:
		out = append(out, b1|byte(n))
	case n < 1<<16:
		out = binary.BigEndian.AppendUint16(append(out, b1|126), uint16(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, b1|127), n)
	}
	if !f.Masked {
		return append(out, f.Payload...)
	}
	var key [4]byte
	rand.Read(key[:])
	out = append(out, key[:]...)
	for i, c := range f.Payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// WS is a WebSocket client driven by hand over a real socket: it sends
// frames as given and reads the gateway's frames one by one, answering
// nothing by itself (not even pings).
type WS struct {
	Conn net.Conn
	R    *bufio.Reader
	Resp *http.Response // the gateway's 101
}

// OpenWS connects to the gateway (TLS or not), asks for a WebSocket tunnel
// to path with WSRequest plus edits, and fails the test unless the answer
// is a 101 with the Sec-WebSocket-Accept that answers the request's key.
func OpenWS(t testing.TB, g *Gateway, useTLS bool, path string, edits ...Edit) *WS {
	t.Helper()
	conn := g.Connect(t, useTLS)
	head := ApplyEdits(WSRequest(g.Addr(useTLS), path), edits)
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to the WebSocket handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		t.Fatalf("WebSocket handshake answered %s %q, want 101", resp.Status, body)
	}
	key := WSKey
	if req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head))); err == nil {
		key = req.Header.Get("Sec-WebSocket-Key")
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key); got != want {
		t.Fatalf("Sec-WebSocket-Accept = %q for key %q, want %q", got, key, want)
	}
	return &WS{Conn: conn, R: br, Resp: resp}
}

// Send writes frames in one Write.
func (ws *WS) Send(t testing.TB, frames ...Frame) {
	t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, f.Bytes()...)
	}
	if _, err := ws.Conn.Write(b); err != nil {
		t.Fatalf("sending frames: %v", err)
	}
}

// ReadFrame reads one frame. A payload over 1 MiB is an error: the
// gateway sends at most 256 KiB a frame.
func (ws *WS) ReadFrame() (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(ws.R, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, RSV: h[0] >> 4 & 7, Op: h[0] & 0xf, Masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(ws.R, b[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(ws.R, b[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if f.Masked {
		return f, errors.New("the gateway sent a masked frame")
	}
	if n > 1<<20 {
		return f, fmt.Errorf("the gateway sent a frame of %d bytes", n)
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(ws.R, f.Payload); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// Closing is what a gateway sent until and with its Close frame.
type Closing struct {
	Data   []byte // the payloads of its data frames, in order
	Pings  int    // the pings it sent
	Code   int    // the Close frame's code; 1005 for a Close without one
	Reason string
}

// ReadUntilClose reads frames until the gateway's Close and returns what
// came; any other end of the stream fails the test. Data frames must be
// well formed: unmasked, no reserved bits, opcodes in order.
func (ws *WS) ReadUntilClose(t testing.TB) Closing {
	t.Helper()
	var c Closing
	inMessage := false
	for {
		f, err := ws.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames until the gateway's Close (after %d data bytes): %v", len(c.Data), err)
		}
		if f.RSV != 0 {
			t.Fatalf("the gateway sent reserved bits %d in opcode %d", f.RSV, f.Op)
		}
		switch f.Op {
		case OpBinary, OpText, OpContinuation:
			if (f.Op == OpContinuation) != inMessage {
				t.Fatalf("the gateway sent opcode %d with a message in progress: %v", f.Op, inMessage)
			}
			inMessage = !f.Fin
			c.Data = append(c.Data, f.Payload...)
		case OpPing:
			c.Pings++
		case OpPong:
		case OpClose:
			if !f.Fin || len(f.Payload) == 1 || len(f.Payload) > 125 {
				t.Fatalf("the gateway sent a malformed Close %+v", f)
			}
			c.Code = 1005
			if len(f.Payload) >= 2 {
				c.Code = int(binary.BigEndian.Uint16(f.Payload))
				c.Reason = string(f.Payload[2:])
			}
			return c
		default:
			t.Fatalf("the gateway sent opcode %d", f.Op)
		}
	}
}

// ExpectClose reads until the gateway's Close, checks its code, and then
// that the gateway ends the connection (EOF or a reset) without sending
// anything more. It returns what came before the Close.
func (ws *WS) ExpectClose(t testing.TB, code int) Closing {
	t.Helper()
	c := ws.ReadUntilClose(t)
	if c.Code != code {
		t.Fatalf("the gateway closed with %d %q, want %d", c.Code, c.Reason, code)
	}
	ws.ExpectEnd(t)
	return c
}

// ExpectEnd checks that the gateway ends the connection, within
// WaitLimit, sending nothing more.
func (ws *WS) ExpectEnd(t testing.TB) {
	t.Helper()
	ws.Conn.SetReadDeadline(time.Now().Add(WaitLimit))
	n, err := io.Copy(io.Discard, ws.R)
	if n > 0 {
		t.Errorf("the gateway sent %d more bytes after its Close", n)
	}
	if err != nil && !IsReset(err) {
		t.Fatalf("waiting for the gateway to end the connection: %v", err)
	}
}
