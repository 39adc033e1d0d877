package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	gorilla "github.com/gorilla/websocket"
)

// The benchmark's WebSocket clients, one per library, each as a net.Conn
// so that the harness's helpers (openTunnel, openIdle, benchRoundTrip) use
// them as they use the other paths: a Write is one binary message, Read
// returns the payloads of the messages received, a Close frame with 1000
// reads as io.EOF. Close drops the TCP connection without the closing
// handshake, the same for all three.

// maxEmptyMessages bounds the empty messages one Read skips.
const maxEmptyMessages = 1000

var errEmptyMessages = errors.New("too many empty messages in a row")

// dialCoder dials with coder/websocket and wraps the connection with its own
// NetConn.
func dialCoder(ctx context.Context, url string) (net.Conn, error) {
	c, _, err := coder.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	return coderConn{coder.NetConn(context.Background(), c, coder.MessageBinary), c}, nil
}

// coderConn is coder's NetConn, but closed without the closing handshake.
type coderConn struct {
	net.Conn
	ws *coder.Conn
}

func (c coderConn) Close() error { return c.ws.CloseNow() }

// gorillaDialer writes a 32 KiB message as one frame in one write. Its
// buffer comes from a pool only while a message is written, so a thousand
// idle clients do not hold 32 MiB.
var gorillaDialer = gorilla.Dialer{
	HandshakeTimeout: dialTimeout,
	WriteBufferSize:  wsMsgSize,
	WriteBufferPool:  &sync.Pool{},
}

func dialGorilla(ctx context.Context, url string) (net.Conn, error) {
	c, _, err := gorillaDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(wsReadLimit)
	return &gorillaConn{Conn: c}, nil
}

type gorillaConn struct {
	*gorilla.Conn
	msg io.Reader // the message being read, or nil
}

func (c *gorillaConn) Read(p []byte) (int, error) {
	for range maxEmptyMessages {
		if c.msg == nil {
			_, r, err := c.NextReader()
			if gorilla.IsCloseError(err, gorilla.CloseNormalClosure) {
				return 0, io.EOF
			}
			if err != nil {
				return 0, err
			}
			c.msg = r
		}
		n, err := c.msg.Read(p)
		if err == io.EOF {
			c.msg, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, errEmptyMessages
}

func (c *gorillaConn) Write(p []byte) (int, error) {
	if err := c.WriteMessage(gorilla.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *gorillaConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func dialGobwas(ctx context.Context, url string) (net.Conn, error) {
	conn, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	src := io.Reader(conn)
	if br != nil { // frames that came with the 101; br reads on from conn
		src = br
	}
	c := &gobwasConn{Conn: conn}
	c.rd = wsutil.Reader{
		Source:         src,
		State:          ws.StateClientSide,
		MaxMessageSize: wsReadLimit,
		OnIntermediate: c.control,
	}
	return c, nil
}

// gobwasConn frames messages itself with gobwas/ws: a message is one masked
// frame, header and payload in one write.
type gobwasConn struct {
	net.Conn
	rd    wsutil.Reader
	inMsg bool         // rd is in a message
	wbuf  bytes.Buffer // the frame being written
}

func (c *gobwasConn) Read(p []byte) (int, error) {
	for range maxEmptyMessages {
		if !c.inMsg {
			h, err := c.rd.NextFrame()
			if err != nil {
				return 0, err
			}
			if h.OpCode.IsControl() {
				if err := c.control(h, &c.rd); err != nil {
					var ce wsutil.ClosedError
					if errors.As(err, &ce) && ce.Code == ws.StatusNormalClosure {
						return 0, io.EOF
					}
					return 0, err
				}
				continue
			}
			c.inMsg = true
		}
		n, err := c.rd.Read(p)
		if err == io.EOF {
			c.inMsg, err = false, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, errEmptyMessages
}

// control answers a ping or a close in one write.
func (c *gobwasConn) control(h ws.Header, body io.Reader) error {
	var out bytes.Buffer
	err := wsutil.ControlHandler{
		Src: body, Dst: &out, State: ws.StateClientSide, DisableSrcCiphering: true,
	}.Handle(h)
	if out.Len() > 0 {
		if _, werr := c.Conn.Write(out.Bytes()); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func (c *gobwasConn) Write(p []byte) (int, error) {
	h := ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: ws.NewMask(), Length: int64(len(p))}
	c.wbuf.Reset()
	if err := ws.WriteHeader(&c.wbuf, h); err != nil {
		return 0, err
	}
	n := c.wbuf.Len()
	c.wbuf.Write(p)
	ws.Cipher(c.wbuf.Bytes()[n:], h.Mask, 0)
	if _, err := c.Conn.Write(c.wbuf.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
