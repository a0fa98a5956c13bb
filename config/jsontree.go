package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// The config file is decoded in two passes: encoding/json checks the syntax
// (its messages are good and well tested; we add line:column), then
// parseTree builds a small tree that keeps every key's position, its order
// and duplicates, and numbers as their source text, which encoding/json
// would lose.

type jkind int

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jBool:
		return "boolean"
	case jNumber:
		return "number"
	case jString:
		return "string"
	case jArray:
		return "list"
	default:
		return "object"
	}
}

// jvalue is one JSON value with its position (1-based line and column).
type jvalue struct {
	kind    jkind
	pos     position
	str     string // jString: the decoded string; jNumber: the source text
	b       bool
	members []jmember
	elems   []*jvalue
}

type jmember struct {
	key string
	pos position // of the key
	val *jvalue
}

type position struct{ line, col int }

// syntaxError is a JSON syntax error at a position.
type syntaxError struct {
	pos position
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

// stripComments blanks every line whose first non-blank character is '#'
// (such a line can never be valid JSON, since JSON strings cannot span
// lines), so that the README's annotated example loads as printed. Offsets
// and so line:column positions are kept.
func stripComments(data []byte) []byte {
	out := data
	copied := false
	for i := 0; i < len(data); {
		j := i
		for j < len(data) && (data[j] == ' ' || data[j] == '\t') {
			j++
		}
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += i
		}
		if j < end && data[j] == '#' {
			if !copied {
				out = bytes.Clone(data)
				copied = true
			}
			for k := j; k < end; k++ {
				out[k] = ' '
			}
		}
		i = end + 1
	}
	return out
}

// posAt converts a byte offset into a 1-based line and column (the column
// counts characters, a tab as one).
func posAt(data []byte, off int) position {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return position{line, 1 + utf8.RuneCount(data[start:off])}
}

// parseTree parses data, which must hold one JSON value.
func parseTree(data []byte) (*jvalue, error) {
	var scratch json.RawMessage
	if err := json.Unmarshal(data, &scratch); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off := int(se.Offset) - 1
			if se.Offset >= int64(len(data)) {
				off = len(data)
			}
			return nil, &syntaxError{posAt(data, off), "syntax error: " + se.Error()}
		}
		return nil, &syntaxError{position{1, 1}, "syntax error: " + err.Error()}
	}
	p := parser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.off != len(p.data) {
		return nil, p.errorf("syntax error: unexpected data after the top-level value")
	}
	return v, nil
}

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
const maxDepth = 64

// parser parses JSON that encoding/json has already accepted; it still
// checks everything it relies on, so that it never panics.
type parser struct {
	data []byte
	off  int
	// The position of offset curOff, advanced as the parser goes on, so
	// that positions cost O(len(data)) in all.
	curOff int
	cur    position
}

// posAt returns the position of offset off.
func (p *parser) posAt(off int) position {
	if off < p.curOff || p.cur.line == 0 {
		p.curOff, p.cur = 0, position{1, 1}
	}
	for p.curOff < off && p.curOff < len(p.data) {
		r, n := utf8.DecodeRune(p.data[p.curOff:])
		if r == '\n' {
			p.cur.line++
			p.cur.col = 1
		} else {
			p.cur.col++
		}
		p.curOff += n
	}
	return p.cur
}

func (p *parser) errorf(format string, args ...any) error {
	return &syntaxError{p.posAt(p.off), fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.off < len(p.data) {
		switch p.data[p.off] {
		case ' ', '\t', '\n', '\r':
			p.off++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (*jvalue, error) {
	if depth > maxDepth {
		return nil, p.errorf("syntax error: nested too deeply")
	}
	if p.off >= len(p.data) {
		return nil, p.errorf("syntax error: unexpected end of JSON input")
	}
	v := &jvalue{pos: p.posAt(p.off)}
	switch c := p.data[p.off]; {
	case c == '{':
		v.kind = jObject
		p.off++
		p.skipSpace()
		if p.off < len(p.data) && p.data[p.off] == '}' {
			p.off++
			return v, nil
		}
		for {
			p.skipSpace()
			kpos := p.posAt(p.off)
			key, err := p.string()
			if err != nil {
				return nil, err
			}
			p.skipSpace()
			if p.off >= len(p.data) || p.data[p.off] != ':' {
				return nil, p.errorf("syntax error: want ':' after object key")
			}
			p.off++
			p.skipSpace()
			val, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.members = append(v.members, jmember{key, kpos, val})
			p.skipSpace()
			if p.off < len(p.data) && p.data[p.off] == ',' {
				p.off++
				continue
			}
			if p.off < len(p.data) && p.data[p.off] == '}' {
				p.off++
				return v, nil
			}
			return nil, p.errorf("syntax error: want ',' or '}' in object")
		}
	case c == '[':
		v.kind = jArray
		p.off++
		p.skipSpace()
		if p.off < len(p.data) && p.data[p.off] == ']' {
			p.off++
			return v, nil
		}
		for {
			p.skipSpace()
			e, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.elems = append(v.elems, e)
			p.skipSpace()
			if p.off < len(p.data) && p.data[p.off] == ',' {
				p.off++
				continue
			}
			if p.off < len(p.data) && p.data[p.off] == ']' {
				p.off++
				return v, nil
			}
			return nil, p.errorf("syntax error: want ',' or ']' in list")
		}
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		v.kind, v.str = jString, s
		return v, nil
	case c == 't' && bytes.HasPrefix(p.data[p.off:], []byte("true")):
		p.off += 4
		v.kind, v.b = jBool, true
		return v, nil
	case c == 'f' && bytes.HasPrefix(p.data[p.off:], []byte("false")):
		p.off += 5
		v.kind = jBool
		return v, nil
	case c == 'n' && bytes.HasPrefix(p.data[p.off:], []byte("null")):
		p.off += 4
		v.kind = jNull
		return v, nil
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.off
		for p.off < len(p.data) && bytes.IndexByte([]byte("+-.0123456789eE"), p.data[p.off]) >= 0 {
			p.off++
		}
		v.kind, v.str = jNumber, string(p.data[start:p.off])
		return v, nil
	default:
		return nil, p.errorf("syntax error: unexpected character %q", c)
	}
}

// string reads a string token and decodes its escapes.
func (p *parser) string() (string, error) {
	if p.off >= len(p.data) || p.data[p.off] != '"' {
		return "", p.errorf("syntax error: want a string")
	}
	start := p.off
	p.off++
	for p.off < len(p.data) {
		switch p.data[p.off] {
		case '\\':
			p.off += 2
			continue
		case '"':
			p.off++
			var s string
			if err := json.Unmarshal(p.data[start:p.off], &s); err != nil {
				p.off = start
				return "", p.errorf("syntax error: bad string: %v", err)
			}
			return s, nil
		}
		p.off++
	}
	p.off = len(p.data)
	return "", p.errorf("syntax error: unterminated string")
}
