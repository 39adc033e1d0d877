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
	// ctx's deadline is not copied to conn: the conn's timer could fire
	// first and turn ctx's error into a bare i/o timeout. AfterFunc runs
	// at the deadline as at a cancel.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return func() error {
		if !stop() && ctx.Err() != nil {
			return ctx.Err()
		}
		conn.SetDeadline(time.Time{})
		return nil
	}
}
