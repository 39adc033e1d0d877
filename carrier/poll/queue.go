package poll

import "sync"

// chunkSize is the unit in which sessions hold bytes.
const chunkSize = 32 << 10

type chunk = [chunkSize]byte

var chunks = sync.Pool{New: func() any { return new(chunk) }}

// queue is a FIFO of bytes held in chunks from a pool, each given back
// once its bytes are dropped: a tunnel's memory follows the bytes it
// holds, and an idle tunnel holds none. Bytes never move once queued, so
// a slice from peek stays valid until they are dropped.
type queue struct {
	chunks []*chunk
	head   int // index of the first byte held, in chunks[0]
	n      int // bytes held
}

// len returns the number of bytes held.
func (q *queue) len() int { return q.n }

// push appends p.
func (q *queue) push(p []byte) {
	for len(p) > 0 {
		end := q.head + q.n
		i, at := end/chunkSize, end%chunkSize
		if i == len(q.chunks) {
			q.chunks = append(q.chunks, chunks.Get().(*chunk))
		}
		m := copy(q.chunks[i][at:], p)
		q.n += m
		p = p[m:]
	}
}

// peek returns up to max bytes from the off-th byte held, as many as lie
// in one chunk.
func (q *queue) peek(off, max int) []byte {
	pos := q.head + off
	i, at := pos/chunkSize, pos%chunkSize
	m := min(chunkSize-at, q.n-off, max)
	return q.chunks[i][at : at+m]
}

// copyOut copies bytes from the off-th byte held into p and returns how
// many it copied.
func (q *queue) copyOut(p []byte, off int) int {
	n := 0
	for n < len(p) && off+n < q.n {
		n += copy(p[n:], q.peek(off+n, len(p)-n))
	}
	return n
}

// drop discards the first n bytes held, giving back the chunks they
// emptied.
func (q *queue) drop(n int) {
	q.head += n
	q.n -= n
	for q.head >= chunkSize || (q.n == 0 && len(q.chunks) > 0) {
		chunks.Put(q.chunks[0])
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head = max(q.head-chunkSize, 0)
	}
	if len(q.chunks) == 0 {
		q.chunks, q.head = nil, 0
	}
}

// reset drops everything held.
func (q *queue) reset() { q.drop(q.n) }
