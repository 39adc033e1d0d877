package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/internal/netutil"
)

// maxHeadBytes bounds how much of a proxy's answer head Connect reads.
const maxHeadBytes = 64 << 10

// Connect asks the proxy at the other end of conn for a tunnel to addr
// (host:port) with CONNECT, and returns the tunnel. conn is an open
// connection to the proxy; when proxy's scheme is https, the caller has
// done the TLS handshake with the proxy already. proxy gives the
// credentials: Proxy-Authorization Basic from its user info, when set.
//
// ctx bounds the exchange only, never the tunnel. On success the returned
// connection is conn itself, or conn with the bytes the proxy sent right
// after its answer in front; it supports CloseWrite when conn does.
//
// On failure Connect does not close conn; the caller must close it. A
// proxy's refusal (an answer other than 2xx) is an *Error; when ctx ended
// first, the error wraps ctx's error.
func Connect(ctx context.Context, conn net.Conn, proxy *url.URL, addr string) (net.Conn, error) {
	if proxy.Scheme != "http" && proxy.Scheme != "https" {
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), errScheme)
	}
	h := http.Header{"User-Agent": {carrier.UserAgent}}
	auth := Authorization(proxy)
	if auth != "" {
		h.Set("Proxy-Authorization", auth)
	}
	req := &http.Request{
		Method:     http.MethodConnect,
		URL:        &url.URL{Opaque: addr},
		Host:       addr,
		Header:     h,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
	}

	release := carrier.Bound(ctx, conn)
	// The limit holds for the answer's head and what Connect reads of its
	// body; the returned connection reads conn itself.
	lr := &io.LimitedReader{R: conn, N: maxHeadBytes}
	br := bufio.NewReader(lr)
	resp, err := exchange(conn, br, lr, req)
	if err == nil && resp.StatusCode/100 != 2 {
		refusal := readError(ctx, conn, resp, Addr(proxy), auth != "")
		release()
		return nil, refusal
	}
	if rerr := release(); rerr != nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("proxy %s: CONNECT %s: %w", Addr(proxy), addr, err)
	}
	var prefix []byte
	if n := br.Buffered(); n > 0 {
		prefix, _ = br.Peek(n)
	}
	return netutil.WithPrefix(conn, prefix), nil
}

// exchange sends req and reads the final answer's head from br, passing
// over informational (1xx) answers. lr is what br reads from.
func exchange(conn net.Conn, br *bufio.Reader, lr *io.LimitedReader, req *http.Request) (*http.Response, error) {
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("sending the request: %w", err)
	}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil && lr.N == 0 {
			return nil, fmt.Errorf("the answer's head is longer than %d bytes", maxHeadBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the answer: %w", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}

// Authorization returns the Proxy-Authorization value for proxy's user
// info, "Basic base64(user:password)", or "" when proxy (nil allowed)
// has none.
func Authorization(proxy *url.URL) string {
	if proxy == nil || proxy.User == nil {
		return ""
	}
	pass, _ := proxy.User.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(proxy.User.Username()+":"+pass))
}
