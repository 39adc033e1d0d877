package carrier

import (
	"io"
	"net/http"
	"strings"
)

// maxReasonBytes bounds how much of a refusal's body a client reads.
const maxReasonBytes = 4 << 10

// ReadStatusError turns a response that refused a handshake into a
// *StatusError, its reason taken from the first line of the body, marked
// as an intermediary's when it lacks the gateway's VersionHeader.
func ReadStatusError(resp *http.Response) *StatusError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReasonBytes))
	resp.Body.Close()
	reason, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return &StatusError{
		Code:         resp.StatusCode,
		Reason:       strings.TrimSpace(reason),
		Header:       resp.Header,
		Intermediary: resp.Header.Get(VersionHeader) == "",
	}
}
