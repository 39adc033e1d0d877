package config

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// lines maps each key and table of a TOML document to the line it is
// written on, so that a check on a decoded value can name the line of its
// key. go-toml decodes values without their positions; its parser
// (unstable.Parser) keeps the byte range of every key, which this walk
// turns into lines.
//
// Keys are dotted paths, with an index for each entry of an array of tables
// or inline tables: "limits.long_poll", "route[1]" (the line of the second
// [[route]] header), "route[1].target", "route[1].tokens_sha256[2]" (an
// element on a line of its own in a multi-line array).
type lines map[string]int

// indexLines walks data, which the decoder has already accepted. It
// records the first line of each key; on a parse error it returns what it
// found so far.
func indexLines(data []byte) lines {
	idx := lines{}
	arrays := map[string]int{} // array-of-tables path → entries so far
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			it := e.Key()
			path, line := idx.resolve(&p, "", &it, arrays)
			if e.Kind == unstable.ArrayTable {
				n := arrays[path]
				arrays[path] = n + 1
				path = indexed(path, n)
			}
			idx.add(path, line)
			table = path
		case unstable.KeyValue:
			idx.keyValue(&p, table, e, arrays)
		}
	}
	return idx
}

// resolve joins the key parts it yields to prefix, stepping into the
// latest entry of every array of tables on the way, as TOML does, and
// returns the path and the line of the key's first part.
func (idx lines) resolve(p *unstable.Parser, prefix string, it *unstable.Iterator, arrays map[string]int) (string, int) {
	path, line := prefix, 0
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = lineOf(p, k)
		}
		if n, ok := arrays[path]; ok && path != prefix {
			path = indexed(path, n-1)
		}
		if path != prefix {
			idx.add(path, line) // a table a dotted key makes: tls.cert = … makes tls
		}
		path = join(path, string(k.Data))
	}
	return path, line
}

// keyValue records a key = value line and, inside an inline table or an
// array, the keys and elements it holds.
func (idx lines) keyValue(p *unstable.Parser, table string, kv *unstable.Node, arrays map[string]int) {
	it := kv.Key()
	path, line := idx.resolve(p, table, &it, arrays)
	idx.add(path, line)
	idx.value(p, path, kv.Value(), line)
}

func (idx lines) value(p *unstable.Parser, path string, v *unstable.Node, line int) {
	switch v.Kind {
	case unstable.InlineTable:
		kids := v.Children()
		for kids.Next() {
			if kv := kids.Node(); kv.Kind == unstable.KeyValue {
				idx.keyValue(p, path, kv, nil)
			}
		}
	case unstable.Array:
		kids := v.Children()
		for i := 0; kids.Next(); i++ {
			el := kids.Node()
			at := line
			if l := lineOf(p, el); l > 0 {
				at = l
			}
			idx.add(indexed(path, i), at)
			idx.value(p, indexed(path, i), el, at)
		}
	}
}

func (idx lines) add(path string, line int) {
	if _, ok := idx[path]; !ok && line > 0 {
		idx[path] = line
	}
}

// at returns the line of path, or of the nearest enclosing key or table
// the document writes out; 0 when there is none.
func (idx lines) at(path string) int {
	for path != "" {
		if l, ok := idx[path]; ok {
			return l
		}
		cut := max(strings.LastIndexByte(path, '.'), strings.LastIndexByte(path, '['))
		if cut < 0 {
			break
		}
		path = path[:cut]
	}
	return 0
}

// lineOf is the line n starts on; 0 when the parser kept no range for it
// (arrays, and values it does not point into).
func lineOf(p *unstable.Parser, n *unstable.Node) int {
	if n.Raw.Length == 0 {
		return 0
	}
	return p.Shape(n.Raw).Start.Line
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexed(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
