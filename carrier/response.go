package carrier

import (
	"html"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxReasonBytes bounds how much of a refusal's body a client reads.
const maxReasonBytes = 4 << 10

// ReadStatusError turns a response that refused a handshake into a
// *StatusError, its reason read from the body (Reason), marked as an
// intermediary's when it lacks the gateway's VersionHeader.
func ReadStatusError(resp *http.Response) *StatusError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReasonBytes))
	resp.Body.Close()
	return &StatusError{
		Code:         resp.StatusCode,
		Reason:       Reason(resp, string(body)),
		Header:       resp.Header,
		Intermediary: resp.Header.Get(VersionHeader) == "",
	}
}

// Reason is the one line that says why resp, whose body (or its start) is
// body, refused: the gateway's one-line body; for an intermediary's page,
// its HTML title (without a leading status code, as tinyproxy titles its
// pages "403 Access violation"), with squid's error code in brackets from
// X-Squid-Error, as every squid page has the same title; else the status
// line's text.
func Reason(resp *http.Response, body string) string {
	s := strings.TrimPrefix(summary(resp, body), strconv.Itoa(resp.StatusCode)+" ")
	if code, _, _ := strings.Cut(resp.Header.Get("X-Squid-Error"), " "); code != "" {
		s += " [" + code + "]"
	}
	return graphic(s)
}

// graphic returns s with its control and other non-graphic characters,
// and the bytes of invalid UTF-8, as Go escapes (as in "\r", "\x1b",
// "\x9b"), when it has any: a reason comes from whoever answered, and must
// neither break a log line nor reach a terminal as an escape sequence
// (0x9b alone is one to a terminal that takes 8-bit controls).
func graphic(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsGraphic(r) }) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// summary is the title of an HTML body, the first line of another body,
// else the status line's text.
func summary(resp *http.Response, body string) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "text/html" || strings.HasPrefix(strings.TrimSpace(body), "<") {
		body = htmlTitle(body)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(body), "\n")
	if line = strings.TrimSpace(line); line != "" {
		return line
	}
	_, text, _ := strings.Cut(resp.Status, " ")
	return strings.TrimSpace(text)
}

// htmlTitle returns the text of the page's title element, its spaces
// folded, or "".
func htmlTitle(page string) string {
	lower := asciiLower(page)
	start := strings.Index(lower, "<title")
	if start < 0 {
		return ""
	}
	open := strings.IndexByte(lower[start:], '>')
	if open < 0 {
		return ""
	}
	start += open + 1
	end := strings.Index(lower[start:], "</title")
	if end < 0 {
		return ""
	}
	return strings.Join(strings.Fields(html.UnescapeString(page[start:start+end])), " ")
}

// asciiLower returns s with its ASCII letters in lower case and every
// other byte as it is, so that an index into it is one into s.
// strings.ToLower is not that: it writes each byte of invalid UTF-8 as
// three, and a page from whoever answered may hold any bytes.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
