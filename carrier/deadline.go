package carrier

import (
	"context"
	"net"
	"time"
)

// Bound makes ctx's deadline and cancellation apply to conn's reads and
// writes until the returned release is called. release clears the deadline,
// so the stream that follows the handshake has none; it returns ctx's error
// when ctx ended first, and then conn must be closed.
func Bound(ctx context.Context, conn net.Conn) (release func() error) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return func() error {
		if !stop() && ctx.Err() != nil {
			return ctx.Err()
		}
		conn.SetDeadline(time.Time{})
		return nil
	}
}
