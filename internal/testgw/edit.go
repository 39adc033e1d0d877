package testgw

import (
	"strconv"
	"strings"
)

// An Edit changes a request head (request line, header lines, blank line),
// as a misbehaving client or intermediary would.
type Edit func(head string) string

// ApplyEdits applies edits to head in order.
func ApplyEdits(head string, edits []Edit) string {
	for _, e := range edits {
		head = e(head)
	}
	return head
}

// Without drops the named header lines (names compared ignoring case).
func Without(names ...string) Edit {
	return func(head string) string {
		lines := strings.Split(head, "\r\n")
		kept := lines[:1]
		for _, l := range lines[1:] {
			name, _, _ := strings.Cut(l, ":")
			drop := false
			for _, n := range names {
				drop = drop || strings.EqualFold(strings.TrimSpace(name), n)
			}
			if !drop {
				kept = append(kept, l)
			}
		}
		return strings.Join(kept, "\r\n")
	}
}

// With adds a header line.
func With(line string) Edit {
	return func(head string) string {
		return strings.TrimSuffix(head, "\r\n\r\n") + "\r\n" + line + "\r\n\r\n"
	}
}

// Replace drops the header lines named as line's and adds line instead.
func Replace(line string) Edit {
	name, _, _ := strings.Cut(line, ":")
	return func(head string) string { return With(line)(Without(name)(head)) }
}

// Method replaces the request's method.
func Method(m string) Edit {
	return func(head string) string {
		_, rest, _ := strings.Cut(head, " ")
		return m + " " + rest
	}
}

// Proto replaces the request line's protocol version.
func Proto(p string) Edit {
	return func(head string) string {
		line, rest, _ := strings.Cut(head, "\r\n")
		i := strings.LastIndex(line, " ")
		return line[:i+1] + p + "\r\n" + rest
	}
}

// Body gives the request a body with its Content-Length.
func Body(b string) Edit {
	return func(head string) string {
		return With("Content-Length: "+strconv.Itoa(len(b)))(head) + b
	}
}
