package load

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/porthole/porthole/internal/netutil"
)

// Bounds of one tunnel's echo loop.
const (
	maxChunk  = 64 << 10 // chunk sizes are drawn from 1 B to maxChunk
	maxChunks = 1 << 24  // the writer's count bound, beside its time bound
	piece     = 16 << 10 // the reader compares a chunk's echo this much at a time
	// window is how many chunks may be on their way at once (sent, their
	// echo not read back yet): the stream stays busy both ways, while the
	// bytes in flight, and so the time to drain them when the load stops,
	// stay bounded however deep the carriers' buffers are. Two chunks are
	// 128 KiB at most, a socket's default receive buffer (tcp_rmem): with
	// four, thousands of tunnels spent seconds in TCP's zero-window probes.
	window = 2
)

// stream is the random byte stream one tunnel sends, split into chunks of
// random sizes. The writer and the reader each hold one made from the same
// seed, so the reader knows what each chunk must be without the writer
// keeping a copy: ChaCha8's Read gives the same bytes however the reads
// are split.
type stream struct {
	sizes *rand.Rand
	data  *rand.ChaCha8
}

func newStream(seed uint64) *stream {
	var key [32]byte
	for i := range 4 {
		key[i*8] = byte(seed >> (8 * i))
		key[i*8+4] = byte(seed >> (8*i + 32))
	}
	return &stream{sizes: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), data: rand.NewChaCha8(key)}
}

// next is the size of the next chunk.
func (s *stream) next() int { return 1 + s.sizes.IntN(maxChunk) }

// echoResult is what one tunnel's echo loop did.
type echoResult struct {
	chunks         int   // chunks sent
	sent, received int64 // bytes
	sentSum        []byte
	receivedSum    []byte
}

// echo sends chunks of seed's stream on conn until stop (or maxChunks),
// window at a time, half-closes, and reads the echo back to EOF, checking
// each chunk as it returns and a running SHA-256 of each direction at the
// end. The caller
// bounds conn with a deadline and closes it. The error says where the
// stream went wrong: the chunk, its offset in the stream and the first byte
// that differs, so a loss or a duplication is reported where it happened.
func echo(conn net.Conn, seed uint64, stop time.Time) (echoResult, error) {
	type written struct {
		chunks int
		n      int64
		sum    []byte
		err    error
	}
	wdone := make(chan written, 1)
	inFlight := make(chan struct{}, window) // a token per chunk on its way
	rdone := make(chan struct{})            // closed when the reader is done
	go func() {
		s, h := newStream(seed), sha256.New()
		buf := make([]byte, maxChunk)
		var w written
		for w.chunks < maxChunks && time.Now().Before(stop) {
			select {
			case inFlight <- struct{}{}:
			case <-rdone:
				w.err = fmt.Errorf("the reader stopped after %d chunks were sent", w.chunks)
			}
			if w.err != nil {
				break
			}
			b := buf[:s.next()]
			s.data.Read(b)
			h.Write(b)
			n, err := conn.Write(b)
			w.n += int64(n)
			if err != nil {
				w.err = fmt.Errorf("writing chunk %d (stream offset %d, %d bytes): %w", w.chunks, w.n-int64(n), len(b), err)
				break
			}
			w.chunks++
		}
		if w.err == nil {
			if err := netutil.CloseWrite(conn); err != nil {
				w.err = fmt.Errorf("half-closing after %d chunks: %w", w.chunks, err)
			}
		}
		w.sum = h.Sum(nil)
		wdone <- w
	}()

	var res echoResult
	rsum := sha256.New()
	rerr := readEcho(conn, newStream(seed), rsum, &res, inFlight)
	close(rdone)
	if rerr != nil {
		// Unblock a writer stuck on a tunnel that no longer reads.
		conn.Close()
	}
	w := <-wdone
	res.chunks, res.sent, res.sentSum, res.receivedSum = w.chunks, w.n, w.sum, rsum.Sum(nil)
	switch {
	case rerr != nil:
		if errors.Is(rerr, errBeyondEnd) || res.received > res.sent {
			return res, fmt.Errorf("%w; %d chunks (%d bytes) were sent", rerr, w.chunks, w.n)
		}
		return res, rerr
	case w.err != nil:
		return res, w.err
	case res.received != res.sent:
		return res, fmt.Errorf("%d bytes came back of %d sent", res.received, res.sent)
	case !bytes.Equal(res.sentSum, res.receivedSum):
		return res, fmt.Errorf("SHA-256 of the %d bytes sent %x, of those received %x", res.sent, res.sentSum, res.receivedSum)
	}
	return res, nil
}

// errBeyondEnd marks bytes that came back past what the stream had sent,
// found only once the writer is done.
var errBeyondEnd = errors.New("bytes beyond the end of the stream")

// readEcho reads the echo of s's chunks from conn until EOF at a chunk's
// end, hashing what it reads into h and counting it in res.received. It
// takes a token from inFlight for each chunk whose echo it has read.
func readEcho(conn net.Conn, s *stream, h hash.Hash, res *echoResult, inFlight <-chan struct{}) error {
	got := make([]byte, piece)
	want := make([]byte, piece)
	for chunk := 0; chunk <= maxChunks; chunk++ {
		size := s.next()
		for off := 0; off < size; {
			n := min(size-off, piece)
			m, err := io.ReadFull(conn, got[:n])
			h.Write(got[:m])
			res.received += int64(m)
			s.data.Read(want[:n])
			if i := firstDiff(got[:m], want[:m]); i >= 0 {
				return fmt.Errorf("chunk %d (%d bytes) at stream offset %d: byte %d of it is %#02x, want %#02x: bytes lost, duplicated or changed there",
					chunk, size, res.received-int64(m)-int64(off), off+i, got[i], want[i])
			}
			switch {
			case err == io.EOF && off == 0:
				return nil // the end, at a chunk's boundary
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				return fmt.Errorf("the echo ended at stream offset %d, %d bytes into chunk %d of %d bytes: bytes lost", res.received, off+m, chunk, size)
			case err != nil:
				return fmt.Errorf("reading chunk %d at stream offset %d: %w", chunk, res.received, err)
			}
			off += n
		}
		select {
		case <-inFlight:
		default:
			return fmt.Errorf("chunk %d came back whole at stream offset %d before it was sent: bytes duplicated before it", chunk, res.received)
		}
	}
	return fmt.Errorf("%w: more than %d chunks came back", errBeyondEnd, maxChunks)
}

// firstDiff is the index of the first byte where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
