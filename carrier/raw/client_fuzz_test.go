package raw_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/carrier"
	"github.com/porthole/porthole/carrier/raw"
)

// FuzzClientHandshake plays a gateway that answers the client's upgrade
// request with arbitrary bytes, then ends the connection. Whatever the
// answer, Handshake returns before its deadline and without a panic. It
// succeeds only on a 101 whose Upgrade names the raw carrier, and the
// tunnel it returns then reads every byte that followed the answer's head,
// once and in order. Any other status is a *carrier.StatusError with that
// code and a reason of graphic characters only, one line that cannot carry
// a terminal's escape sequences.
func FuzzClientHandshake(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: porthole\r\nPorthole-Version: 1\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: porthole\r\n\r\nbytes the service sent at once",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.0 101 Switching Protocols\nUpgrade: PORTHOLE\n\nx",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: porthole\r\n\r\n",
		"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 27\r\nPorthole-Version: 1\r\n\r\norigin not allowed: x.test\n",
		"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 1000000\r\n\r\nservice unreachable",
		"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nno ro\r\n0\r\n\r\n",
		"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Type: text/html\r\n\r\n<html><title>407 Access denied\nby policy</title></html>",
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n",
		"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\n\x1b[2Jscreen cleared\x1b[0m\r\n",
		"HTTP/1.1 101",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	u := &url.URL{Scheme: "http", Host: "gateway.test", Path: "/echo"}
	f.Fuzz(func(t *testing.T, answer []byte) {
		if len(answer) > maxFuzzHead {
			return
		}
		client, gw := net.Pipe()
		defer client.Close()
		served := make(chan error, 1)
		go func() { served <- answerWith(gw, answer) }()

		ctx, cancel := context.WithTimeout(context.Background(), fuzzAnswerLimit)
		defer cancel()
		start := time.Now()
		tun, _, err := raw.Handshake(ctx, client, u, nil)
		if took := time.Since(start); took > fuzzAnswerLimit+time.Second {
			t.Fatalf("Handshake took %v, past its deadline", took)
		}
		want, wantRest := expectedAnswer(answer)
		switch {
		case err == nil && want != http.StatusSwitchingProtocols:
			t.Fatalf("Handshake took an answer that is no upgrade to porthole (status %d)", want)
		case err == nil:
			tun.SetReadDeadline(time.Now().Add(fuzzAnswerLimit))
			rest, rerr := io.ReadAll(tun)
			if rerr != nil {
				t.Fatalf("reading the tunnel after the 101: %v", rerr)
			}
			if !bytes.Equal(rest, wantRest) {
				t.Fatalf("the tunnel read %q after the 101, want %q", rest, wantRest)
			}
		case want == http.StatusSwitchingProtocols:
			t.Fatalf("Handshake refused a valid 101: %v", err)
		case want > 0:
			var se *carrier.StatusError
			if !errors.As(err, &se) || se.Code != want {
				t.Fatalf("Handshake error %v (%T), want a StatusError with code %d", err, err, want)
			}
			if strings.ContainsFunc(se.Reason, func(r rune) bool { return !strconv.IsGraphic(r) }) {
				t.Fatalf("the refusal's reason %q holds a control or other non-graphic character", se.Reason)
			}
		}
		client.Close()
		if err := <-served; err != nil {
			t.Fatal(err)
		}
	})
}

// answerWith reads the client's request head from gw, writes answer, and
// closes gw.
func answerWith(gw net.Conn, answer []byte) error {
	defer gw.Close()
	gw.SetDeadline(time.Now().Add(fuzzAnswerLimit))
	br := bufio.NewReader(gw)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return errors.New("the client's request head did not come whole")
		}
		if line == "\r\n" {
			break
		}
	}
	gw.Write(answer) // the client may stop reading early: no error to check
	return nil
}

// expectedAnswer parses answer as the gateway's answer to a GET and
// returns its status, and for an upgrade to the raw carrier the bytes that
// follow its head. The status is 0 for an answer that is no response,
// and -1 for a 101 that upgrades to something else, which Handshake
// refuses without a StatusError.
func expectedAnswer(answer []byte) (status int, rest []byte) {
	br := bufio.NewReader(bytes.NewReader(answer))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return 0, nil
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return resp.StatusCode, nil
	}
	if !carrier.HeaderHasToken(resp.Header, "Upgrade", raw.Token) {
		return -1, nil
	}
	rest, _ = io.ReadAll(br)
	return resp.StatusCode, rest
}
