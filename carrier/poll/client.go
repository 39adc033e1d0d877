package poll

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/internal/backoff"
	"github.com/porthole/porthole/internal/bufpool"
)

// Options configure Dial. The zero value of each field means its default.
type Options struct {
	// Transport makes the requests; one Conn keeps two of its connections
	// busy (a send beside a long-poll receive). nil means a new
	// http.Transport with default settings.
	Transport *http.Transport
	// CloseTransport closes Transport's idle connections when the Conn
	// closes: set it when the Transport is the Conn's own. A nil
	// Transport is always closed.
	CloseTransport bool
	// Header adds request headers to every request.
	Header http.Header
	// BufferBytes bounds the bytes written and not yet acknowledged by the
	// gateway; Write waits while they fill it. Zero means 1 MiB.
	BufferBytes int
	// GiveUp is how long the Conn keeps retrying a request that fails (a
	// lost connection, an intermediary's 5xx) before the tunnel fails.
	// Zero means 60 seconds, the gateway's default idle timeout.
	GiveUp time.Duration
}

// Request timeouts, over the gateway's long-poll wait and a full send
// buffer's wait.
const (
	recvTimeout  = DefaultLongPoll + 15*time.Second
	sendTimeout  = DefaultLongPoll + 15*time.Second
	closeTimeout = 5 * time.Second        // linger for unsent bytes, then the close request
	lingerStall  = 250 * time.Millisecond // linger without an acknowledgement
)

// Conn is the client's end of a poll tunnel. Write keeps bytes until the
// gateway acknowledges them, sending them in the background, one send at a
// time beside a long-poll receive; bytes written while a send is on its way
// go together in the next one.
type Conn struct {
	*stream
	client  *http.Client
	own     *http.Transport // closed with the Conn when Dial made it
	url     *url.URL
	header  http.Header
	token   string
	giveUp  time.Duration
	postOps atomic.Bool // PUT was refused on the way: every step is a POST

	stop      context.CancelFunc // ends the requests in flight
	ctx       context.Context
	loops     sync.WaitGroup
	closeOnce sync.Once
	gone      atomic.Bool // the gateway no longer has the session
}

// Dial opens a poll session on the route at u (an http or https URL) and
// returns its tunnel. ctx bounds opening the session only.
//
// A refusal by the gateway is a *carrier.StatusError.
func Dial(ctx context.Context, u *url.URL, o *Options) (*Conn, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	c := &Conn{
		stream: newStream(or(opts.BufferBytes, DefaultBufferBytes)),
		url:    u,
		header: carrier.ClientHeader(opts.Header),
		giveUp: or(opts.GiveUp, 60*time.Second),
	}
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{}
		opts.CloseTransport = true
	}
	if opts.CloseTransport {
		c.own = tr
	}
	c.client = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	token, err := c.open(ctx)
	if err != nil {
		c.closeTransport()
		return nil, err
	}
	c.token = token
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.loops.Add(2)
	go c.sendLoop()
	go c.recvLoop()
	return c, nil
}

// open opens the session and returns its token. A failure on the way (a
// lost connection, an intermediary's 502, 503 or 504) is retried until ctx
// ends: the open is named (OpenHeader), so a retry whose first answer was
// lost gets the same session.
func (c *Conn) open(ctx context.Context) (string, error) {
	id := nonce() + nonce()
	b := backoff.Backoff{Base: 20 * time.Millisecond, Max: time.Second}
	for {
		req, err := c.request(ctx, http.MethodPost, "", nil)
		if err != nil {
			return "", err
		}
		req.Header.Set(CarrierHeader, Name)
		req.Header.Set(OpenHeader, id)
		resp, err := c.client.Do(req)
		switch {
		case err == nil && resp.StatusCode == http.StatusCreated:
			drain(resp)
			if token := resp.Header.Get(SessionHeader); token != "" {
				return token, nil
			}
			return "", fmt.Errorf("the gateway's 201 to the poll open carries no %s header", SessionHeader)
		case err == nil:
			se := carrier.ReadStatusError(resp)
			if !se.Intermediary || !retriable(se.Code) {
				return "", se
			}
			err = se
		case !cut(err) || ctx.Err() != nil:
			return "", err // nothing listens, TLS failed, ...: no retry mends it
		}
		select {
		case <-time.After(b.Next()):
		case <-ctx.Done():
			return "", fmt.Errorf("opening the poll session: %w (last: %v)", ctx.Err(), err)
		}
	}
}

// cut reports whether err is a connection cut on the way, which may have
// lost the request or its answer.
func cut(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// CloseWrite tells the service the client will send no more, after the
// bytes already written; replies keep arriving.
func (c *Conn) CloseWrite() error { return c.closeWrite() }

// Close sends the bytes written and not yet acknowledged, waiting while
// the gateway takes them (up to a few seconds, and a moment at most once
// it stops taking them, as when the service reads nothing), then closes
// the session.
func (c *Conn) Close() error {
	err := opError("close", net.ErrClosed)
	c.closeOnce.Do(func() {
		err = nil
		total := time.NewTimer(closeTimeout)
		defer total.Stop()
		c.mu.Lock()
		c.closed = true // Read and Write fail from now on; the sender goes on
		c.broadcast()
		stall := time.NewTimer(lingerStall)
		defer stall.Stop()
	linger:
		for c.out.len() > 0 && c.out.err == nil {
			ch, base := c.changed, c.out.base
			c.mu.Unlock()
			select {
			case <-ch:
			case <-stall.C:
				c.mu.Lock()
				break linger
			case <-total.C:
				c.mu.Lock()
				break linger
			}
			c.mu.Lock()
			if c.out.base != base { // acknowledged: the gateway is taking them
				stall.Reset(lingerStall)
			}
		}
		c.mu.Unlock()
		c.stop()
		c.mu.Lock()
		c.broadcast() // wake the loops to see the stop
		c.mu.Unlock()
		c.loops.Wait()
		if !c.gone.Load() {
			if resp, err := c.send(http.MethodDelete, opClose, nil, nil, closeTimeout); err == nil {
				drain(resp)
			}
		}
		c.closeTransport()
	})
	return err
}

// LocalAddr returns a placeholder: the tunnel's requests use several
// connections, none of them the tunnel's own.
func (c *Conn) LocalAddr() net.Addr { return addr("client") }

// RemoteAddr returns the gateway's URL as an address.
func (c *Conn) RemoteAddr() net.Addr { return addr(c.url.Redacted()) }

func (c *Conn) closeTransport() {
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
}

// sendLoop sends the bytes written, from the first one the gateway has not
// acknowledged, until the end of stream is acknowledged or the Conn closes.
func (c *Conn) sendLoop() {
	defer c.loops.Done()
	for {
		c.mu.Lock()
		for c.out.len() == 0 && !c.out.eof && c.ctx.Err() == nil {
			c.await(nil)
		}
		if c.ctx.Err() != nil {
			c.mu.Unlock()
			return
		}
		off := c.out.base
		bp := bufpool.Get(maxBodyBytes) // held while a send is on its way only
		body := (*bp)[:c.out.copyFrom(*bp, off)]
		eof := c.out.eof && off+int64(len(body)) == c.out.end()
		c.mu.Unlock()

		ack, err := c.put(off, body, eof)
		bufpool.Put(bp)
		c.mu.Lock()
		if err != nil {
			c.fail(err)
			c.mu.Unlock()
			return
		}
		c.out.ack(max(ack, c.out.base)) // an ack beyond end was refused in put
		c.broadcast()
		done := eof && ack == c.out.end()
		c.mu.Unlock()
		if done {
			return
		}
	}
}

// recvLoop receives bytes until the gateway's end of stream or an error.
func (c *Conn) recvLoop() {
	defer c.loops.Done()
	for {
		c.mu.Lock()
		for c.in.len() >= c.in.limit && !c.closed {
			c.await(nil)
		}
		k := c.in.next
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		ans, err := c.get(k)
		c.mu.Lock()
		if err != nil {
			c.fail(err)
			c.mu.Unlock()
			return
		}
		c.in.push(ans.data) // past the limit by at most one answer
		c.in.next += int64(len(ans.data))
		ans.release()
		end := ans.end
		if end != nil {
			c.in.end(end)
		}
		c.broadcast()
		c.mu.Unlock()
		if end != nil {
			return
		}
	}
}

// fail ends the tunnel with err: reads return it after the bytes already
// received, writes return it at once. The caller holds c.mu.
func (c *Conn) fail(err error) {
	if errors.Is(err, context.Canceled) && c.closed {
		return
	}
	c.in.end(err)
	if c.out.err == nil {
		c.out.err = err
	}
	c.broadcast()
}

// put sends bytes from offset off, retrying until the gateway answers, and
// returns the gateway's acknowledged offset.
func (c *Conn) put(off int64, p []byte, eof bool) (int64, error) {
	h := http.Header{OffsetHeader: {strconv.FormatInt(off, 10)}}
	if eof {
		h.Set(EOFHeader, "1")
	}
	resp, err := c.exchange(http.MethodPut, opSend, h, p, sendTimeout)
	if err != nil {
		return 0, err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusConflict:
		ack, err := parseOffset(resp.Header, AckHeader)
		if err != nil {
			return 0, fmt.Errorf("gateway's answer to a send: %w", err)
		}
		if ack > off+int64(len(p)) || ack < off {
			return 0, fmt.Errorf("gateway acknowledged offset %d for a send of bytes %d to %d: the session's state is lost", ack, off, off+int64(len(p)))
		}
		return ack, nil
	}
	return 0, carrier.ReadStatusError(resp)
}

// get receives the bytes after offset k, retrying until the gateway
// answers. end is io.EOF after the gateway's end of stream, or the error
// the service's stream broke with.
func (c *Conn) get(k int64) (received, error) {
	h := http.Header{AckHeader: {strconv.FormatInt(k, 10)}}
	for cut := 0; ; cut++ {
		resp, err := c.exchange(http.MethodGet, opRecv, h, nil, recvTimeout)
		if err != nil {
			return received{}, err
		}
		ans, err := c.readAnswer(resp, k)
		if errors.Is(err, errCut) && cut < maxCuts {
			continue // ask again from the same offset
		}
		return ans, err
	}
}

// received is the gateway's answer to a receive.
type received struct {
	data []byte  // the bytes from the offset asked for, in buf
	buf  *[]byte // from bufpool; nil when data is empty
	end  error   // io.EOF after the gateway's end of stream, or why the stream broke
}

// release gives back the answer's buffer.
func (r received) release() {
	if r.buf != nil {
		bufpool.Put(r.buf)
	}
}

// maxRefused is how many refused connections in a row end a session: a
// gateway that restarts has lost it anyway.
const maxRefused = 3

// A receive's answer cut on its way is asked for again, this many times in
// a row at most.
const maxCuts = 100

var errCut = errors.New("the answer to a receive was cut on its way")

// readAnswer reads the gateway's answer to a receive from offset k.
func (c *Conn) readAnswer(resp *http.Response, k int64) (received, error) {
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadGateway:
		if msg := resp.Header.Get(ErrorHeader); msg != "" {
			return received{end: fmt.Errorf("the service's stream broke: %s", msg)}, nil
		}
		fallthrough
	default:
		return received{}, carrier.ReadStatusError(resp)
	}
	off, err := parseOffset(resp.Header, OffsetHeader)
	if err != nil {
		return received{}, fmt.Errorf("gateway's answer to a receive: %w", err)
	}
	if off != k {
		return received{}, fmt.Errorf("gateway answered a receive from offset %d with bytes from %d", k, off)
	}
	if resp.ContentLength > maxBodyBytes {
		return received{}, fmt.Errorf("gateway answered a receive with %d bytes; at most %d are expected", resp.ContentLength, maxBodyBytes)
	}
	var ans received
	if resp.Header.Get(EOFHeader) == "1" {
		ans.end = io.EOF
	}
	if resp.ContentLength == 0 {
		return ans, nil
	}
	ans.buf = bufpool.Get(maxBodyBytes) // taken once the answer has come
	if ans.data, err = readAll(resp.Body, *ans.buf); err != nil {
		ans.release()
		return received{}, fmt.Errorf("%w: %v", errCut, err)
	}
	return ans, nil
}

// readAll reads r to its end into buf, failing if buf cannot hold it.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return buf[:n], nil
	case err != nil:
		return nil, err
	}
	if m, _ := r.Read(make([]byte, 1)); m > 0 {
		return nil, fmt.Errorf("an answer of over %d bytes", len(buf))
	}
	return buf, nil
}

// exchange makes one step's request, retrying with backoff while it fails
// on the way (a lost connection, an intermediary's 5xx) until c.giveUp
// passes. It returns the gateway's answer, which may be a refusal.
func (c *Conn) exchange(method, op string, h http.Header, body []byte, timeout time.Duration) (*http.Response, error) {
	b := backoff.Backoff{Base: 20 * time.Millisecond, Max: 2 * time.Second}
	start := time.Now()
	refused := 0
	for {
		resp, err := c.send(method, op, h, body, timeout)
		if errors.Is(err, syscall.ECONNREFUSED) {
			// Nothing listens where the gateway was: it is gone, and its
			// sessions with it (they live in its memory).
			if refused++; refused >= maxRefused {
				c.gone.Store(true)
				return nil, fmt.Errorf("the gateway refuses connections, so the poll session is gone with it: %w", err)
			}
		} else {
			refused = 0
		}
		if err == nil && isGateways(resp) {
			switch resp.StatusCode {
			case http.StatusNotFound:
				drain(resp)
				c.gone.Store(true)
				return nil, errors.New("the gateway no longer has this poll session: it expired or was closed")
			case http.StatusTooManyRequests: // too many in progress: retry
				err = carrier.ReadStatusError(resp)
				resp = nil
			default:
				return resp, nil
			}
		}
		if c.ctx.Err() != nil {
			if resp != nil {
				drain(resp)
			}
			return nil, c.ctx.Err()
		}
		if err == nil {
			err = c.intermediaryError(resp, method)
			if err == nil {
				continue // the same step again, now as a POST
			}
			if se := (*carrier.StatusError)(nil); !errors.As(err, &se) || !retriable(se.Code) {
				return nil, err
			}
		}
		if time.Since(start) > c.giveUp {
			return nil, fmt.Errorf("poll %s failed for %v: %w", op, c.giveUp, err)
		}
		select {
		case <-time.After(b.Next()):
		case <-c.ctx.Done():
			return nil, c.ctx.Err()
		}
	}
}

// intermediaryError reads an answer that did not come from the gateway.
// It returns nil when the step should go again at once as a POST (an
// intermediary refused the method), the error to retry on for a passing
// failure, and a *carrier.StatusError for anything else.
func (c *Conn) intermediaryError(resp *http.Response, method string) error {
	se := carrier.ReadStatusError(resp)
	switch resp.StatusCode {
	case http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusForbidden:
		if method != http.MethodGet && method != http.MethodPost && !c.postOps.Swap(true) {
			return nil
		}
	}
	return se
}

// retriable reports whether an intermediary's status may pass if the
// request is sent again.
func retriable(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// send makes one request of the session. A POST-only Conn sends every step
// as a POST naming it in OpHeader.
func (c *Conn) send(method, op string, h http.Header, body []byte, timeout time.Duration) (*http.Response, error) {
	ctx := c.ctx
	if method == http.MethodDelete {
		ctx = context.Background() // the close outlives the loops
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := c.request(ctx, method, op, body)
	if err != nil {
		cancel()
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set(SessionHeader, c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{resp.Body, cancel}
	return resp, nil
}

// request builds a request to the route with a fresh nonce in the query,
// so that no cache answers it.
func (c *Conn) request(ctx context.Context, method, op string, body []byte) (*http.Request, error) {
	if c.postOps.Load() && op != "" {
		method = http.MethodPost
	}
	u := *c.url
	q := u.Query()
	q.Set("n", nonce())
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	req.ContentLength = int64(len(body))
	if body == nil && (method == http.MethodPut || method == http.MethodPost) {
		req.Body = http.NoBody
	}
	req.Header = c.header.Clone()
	if method == http.MethodPost && op != "" {
		req.Header.Set(OpHeader, op)
	}
	return req, nil
}

// isGateways reports whether resp comes from the gateway: every poll
// answer of the gateway carries the protocol version.
func isGateways(resp *http.Response) bool {
	return resp.Header.Get(carrier.VersionHeader) != ""
}

func nonce() string {
	var b [9]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// cancelBody releases a request's context once its answer is read.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// addr is a net.Addr for what has no socket address of its own.
type addr string

func (a addr) Network() string { return Name }
func (a addr) String() string  { return string(a) }
