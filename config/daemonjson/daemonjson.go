// Package daemonjson reads and edits Docker's daemon.json the way dockerd
// reads it: strict JSON (Go encoding/json), one object, in the syntax of
// the dockerd release (see Syntax: dockerd 23 and later decode the whole
// file, UTF-8 or UTF-16 with a byte order mark; 20.10 reads the first JSON
// value and ignores the rest). Bad input is reported with file, line and
// column and, for the mistakes operators make (a trailing comma, a comment,
// a second object appended with >>), the fix. The editor changes one member
// in place and keeps every other byte of the file (and its encoding).
package daemonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// MaxSize bounds what Parse reads: daemon.json is a few hundred bytes, and a
// runaway file must not exhaust memory.
const MaxSize = 16 << 20

// File is a parsed daemon.json.
type File struct {
	// Name is the path used in messages.
	Name string
	// Src is the file's bytes as read.
	Src []byte
	// Values is the top-level object; numbers are json.Number. An empty
	// file (only whitespace) is an empty object, as dockerd reads it.
	Values map[string]any
	// Members are the top-level members in file order, duplicates included.
	Members []Member
	// Duplicates are keys given more than once in one object, at any depth.
	// encoding/json keeps the last one silently.
	Duplicates []Duplicate
	// BOM is set when the file starts with a UTF-8 byte order mark (dockerd
	// skips it from 23.0; older releases refuse the file).
	BOM bool
	// Encoding is "UTF-16LE" or "UTF-16BE" for a file that starts with
	// that byte order mark (Whole syntax only); Src then holds the text
	// decoded to UTF-8, and the editor encodes its output back. "" is
	// UTF-8.
	Encoding string
	// Empty is set when the file holds only whitespace.
	Empty bool
	// Trailing is where data after the first JSON value starts, which the
	// FirstValue syntax ignores (nil when there is none).
	Trailing *Trailing
	// Syntax is the syntax the file was read with.
	Syntax Syntax

	open, close int // offsets of the top-level '{' and '}'
	nl          string
}

// Member is one "key": value pair, with where it is in Src.
type Member struct {
	Key string
	// Line and Col (1-based, Col in characters) locate the key's quote.
	Line, Col int
	// Children are the members of an object value, one level down.
	Children []Member

	leadStart        int // just after the '{' or ',' before the key
	keyStart, keyEnd int // the quoted key
	valStart, valEnd int // the raw value
	parent           string
}

// Raw returns the member's value as written.
func (m Member) Raw(src []byte) []byte { return src[m.valStart:m.valEnd] }

// Duplicate is a key that appears again in the same object.
type Duplicate struct {
	// Path is the dotted path of the key ("features.containerd-snapshotter").
	Path string
	// Line is where it appears again; First is where it appeared first.
	Line, Col, First int
}

// Trailing is data after the object that dockerd 20.10 ignores.
type Trailing struct {
	Line, Col int
	// Text is the start of the ignored data, for messages.
	Text string
}

// Syntax is how a dockerd release reads daemon.json (moby
// daemon/config/config.go getConflictFreeConfiguration).
type Syntax int

const (
	// Whole is dockerd 23 and later: a UTF-8, UTF-16LE or UTF-16BE byte
	// order mark decides the encoding (unicode.BOMOverride), invalid UTF-8
	// is refused, a whitespace-only file is {}, and json.Unmarshal refuses
	// anything after the object.
	Whole Syntax = iota
	// FirstValue is dockerd 20.10: json.NewDecoder(…).Decode reads the
	// first JSON value and ignores the rest; an empty or whitespace-only
	// file fails with EOF; a byte order mark is an invalid character;
	// invalid UTF-8 inside strings is read as U+FFFD.
	FirstValue
)

// ErrTooLarge is a file larger than MaxSize.
var ErrTooLarge = errors.New("file too large for a daemon.json")

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Parse reads one daemon.json from r in the Whole syntax (dockerd 23 and
// later). name is used in messages. It returns a *errs.Input for input
// dockerd would refuse. The File keeps the bytes read (for the
// byte-preserving editor); a *bytes.Buffer is taken over, not copied.
func Parse(r io.Reader, name string) (*File, error) { return ParseAs(r, name, Whole) }

// ParseAs is Parse in the syntax of a given dockerd release.
func ParseAs(r io.Reader, name string, syn Syntax) (*File, error) {
	var src []byte
	if b, ok := r.(*bytes.Buffer); ok {
		src = b.Bytes()
	} else {
		var err error
		if src, err = io.ReadAll(io.LimitReader(r, MaxSize+1)); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(src) > MaxSize {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", name, ErrTooLarge, MaxSize)
	}
	return parseBytes(src, name, syn)
}

var (
	utf16LE = []byte{0xFF, 0xFE}
	utf16BE = []byte{0xFE, 0xFF}
)

func parseBytes(src []byte, name string, syn Syntax) (*File, error) {
	f := &File{Name: name, Src: src, nl: "\n", Syntax: syn}
	base := 0
	switch {
	case bytes.HasPrefix(src, utf8BOM):
		if syn == FirstValue {
			return nil, f.errAt(0, "invalid character 'ï' looking for beginning of value",
				fmt.Sprintf("the file starts with a UTF-8 byte order mark, which this dockerd does not skip: remove it (`sed -i '1s/^\\xEF\\xBB\\xBF//' %s`)", name))
		}
		f.BOM, base = true, len(utf8BOM)
	case bytes.HasPrefix(src, utf16LE), bytes.HasPrefix(src, utf16BE):
		if syn == FirstValue {
			c := "ÿ"
			if src[0] == 0xFE {
				c = "þ"
			}
			return nil, f.errAt(0, fmt.Sprintf("invalid character '%s' looking for beginning of value", c),
				fmt.Sprintf("the file is UTF-16 encoded, which this dockerd cannot read: save it as UTF-8 (`iconv -f UTF-16 -t UTF-8 %s`)", name))
		}
		f.Encoding = "UTF-16LE"
		if src[0] == 0xFE {
			f.Encoding = "UTF-16BE"
		}
		src = decodeUTF16(src[2:], f.Encoding == "UTF-16BE")
		f.Src = src
	}
	if bytes.Contains(src, []byte("\r\n")) {
		f.nl = "\r\n"
	}
	body := src[base:]
	if i := invalidUTF8(body); i >= 0 && syn == Whole {
		hint := "dockerd refuses it too (failed to decode configuration JSON); save the file as UTF-8"
		if bytes.IndexByte(body, 0) >= 0 {
			hint = "this looks like a binary file, not JSON; restore daemon.json from a backup or recreate it"
		}
		return nil, f.errAt(base+i, "invalid UTF-8", hint)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if syn == FirstValue {
			return nil, f.errAt(len(src), "EOF",
				"the file is empty, and this dockerd reads no object from it (dockerd 23 and later read it as {}): write `{}` into it")
		}
		f.Empty, f.Values = true, map[string]any{}
		return f, nil
	}
	if syn == FirstValue {
		// json.Decoder reads the first value; whatever follows it is never
		// looked at.
		// A first value that does not decode fails below exactly where
		// json.Unmarshal reports it.
		dec := json.NewDecoder(bytes.NewReader(body))
		var first json.RawMessage
		if err := dec.Decode(&first); err == nil {
			body = trailing(f, base, body, int(dec.InputOffset()))
		}
	}

	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, f.syntaxError(base, se)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && strings.HasPrefix(te.Value, "number") {
			// The only type error a decode into any can give: a number
			// beyond float64, which dockerd's decoder refuses too.
			end := min(base+int(te.Offset), len(f.Src))
			for end > base && strings.IndexByte("0123456789", f.Src[end-1]) < 0 {
				end-- // the offset is past the value's terminator
			}
			start := end
			for start > base && strings.IndexByte("0123456789+-.eE", f.Src[start-1]) >= 0 {
				start--
			}
			return nil, f.errAt(start, fmt.Sprintf("the number %s is out of range (JSON numbers are read as 64-bit floating point: at most about 1.8e308)", f.Src[start:end]), "write a number in range")
		}
		return nil, f.errAt(base, err.Error(), "")
	}
	if _, ok := v.(map[string]any); !ok {
		start := base + len(body) - len(bytes.TrimLeft(body, " \t\r\n"))
		return nil, f.errAt(start, fmt.Sprintf("the top-level value is %s, not an object", kind(v)),
			`daemon.json must be one JSON object: {"key": value, ...}`)
	}
	// Decode again keeping numbers exact; the text is known to be valid.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, f.errAt(base, err.Error(), "")
	}
	f.Values = obj

	s := &scanner{src: src, i: base, f: f}
	s.ws()
	f.open = s.i
	f.Members = s.object("", 0)
	f.close = s.i - 1
	if s.err != nil {
		// Unreachable for valid JSON; never panic on a scanner bug.
		return nil, s.err
	}
	return f, nil
}

// trailing records the data after the first value (at end) that the
// FirstValue syntax ignores, and returns the body up to end.
func trailing(f *File, base int, body []byte, end int) []byte {
	rest := bytes.TrimLeft(body[end:], " \t\r\n")
	if len(rest) > 0 {
		off := base + len(body) - len(rest)
		line, col := f.position(off)
		text := string(rest)
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[:i]
		}
		if r := []rune(text); len(r) > 40 {
			text = string(r[:40]) + "…"
		}
		f.Trailing = &Trailing{Line: line, Col: col, Text: text}
	}
	return body[:end]
}

// Lookup returns the member dockerd uses for key: the last one.
func (f *File) Lookup(key string) (Member, bool) {
	for i := len(f.Members) - 1; i >= 0; i-- {
		if f.Members[i].Key == key {
			return f.Members[i], true
		}
	}
	return Member{}, false
}

// String returns the string value of a top-level key. ok is false when the
// key is absent; err is set when it is present but not a string.
func (f *File) String(key string) (s string, ok bool, err error) {
	v, ok := f.Values[key]
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		m, _ := f.Lookup(key)
		return "", true, errs.Inputf(errs.Pos{File: f.Name, Line: m.Line, Column: m.Col}, "%q is %s, want a string", key, kind(v))
	}
	return s, true, nil
}

// Location is "FILE line N" for a top-level key, or FILE when absent.
func (f *File) Location(key string) string {
	if m, ok := f.Lookup(key); ok {
		return fmt.Sprintf("%s line %d", f.Name, m.Line)
	}
	return f.Name
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// decodeUTF16 decodes UTF-16 text (after its byte order mark) to UTF-8 as
// golang.org/x/text's decoder does for dockerd: unpaired surrogates and an
// odd last byte become U+FFFD.
func decodeUTF16(b []byte, bigEndian bool) []byte {
	units := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if bigEndian {
			units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			units = append(units, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	out := []byte(string(utf16.Decode(units)))
	if len(b)%2 == 1 {
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return out
}

// encode returns editor output in the file's own encoding.
func (f *File) encode(out []byte) []byte {
	if f.Encoding == "" {
		return out
	}
	units := utf16.Encode([]rune(string(out)))
	enc := make([]byte, 0, 2+2*len(units))
	be := f.Encoding == "UTF-16BE"
	if be {
		enc = append(enc, utf16BE...)
	} else {
		enc = append(enc, utf16LE...)
	}
	for _, u := range units {
		if be {
			enc = append(enc, byte(u>>8), byte(u))
		} else {
			enc = append(enc, byte(u), byte(u>>8))
		}
	}
	return enc
}

// invalidUTF8 returns the offset of the first byte that is not UTF-8, -1
// when there is none.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// position returns the 1-based line and character column of offset off.
func (f *File) position(off int) (line, col int) {
	if off > len(f.Src) {
		off = len(f.Src)
	}
	before := f.Src[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	start := bytes.LastIndexByte(before, '\n') + 1
	if f.BOM && start == 0 {
		start = len(utf8BOM)
	}
	if start > off {
		start = off
	}
	return line, 1 + utf8.RuneCount(f.Src[start:off])
}

// errAt is bad input at byte offset off; columns count characters.
func (f *File) errAt(off int, msg, hint string) *errs.Input {
	line, col := f.position(off)
	return &errs.Input{Pos: errs.Pos{File: f.Name, Line: line, Column: col}, Msg: msg, Fix: hint}
}

// syntaxError turns encoding/json's error into one with a position and, for
// the known mistakes (field case 12), the fix.
func (f *File) syntaxError(base int, se *json.SyntaxError) *errs.Input {
	// encoding/json reports the offset after the offending byte, or the
	// length of the input at its end.
	off := base + int(se.Offset)
	eof := strings.Contains(se.Error(), "unexpected end")
	if !eof && off > base {
		off--
	}
	e := f.errAt(off, se.Error(), "")
	if eof {
		e.Fix = "the file ends inside a value: a closing '}', ']' or '\"' is missing"
		return e
	}
	c := f.Src[off]
	prev, prevOff := prevNonSpace(f.Src[base:off])
	msg := se.Error()
	switch {
	case strings.Contains(msg, "after top-level value"):
		e.Fix = "a second JSON value follows the object, often a second object appended with >>; " +
			"merge its keys into the first object: dockerd 23 and later refuse this file"
	case c == '/' || c == '#':
		e.Fix = "JSON has no comments: delete the comment"
	case (c == '}' || c == ']') && prev == ',':
		l, cl := f.position(base + prevOff)
		e.Fix = fmt.Sprintf("trailing comma: JSON allows no ',' before '%c'; delete the ',' at line %d column %d", c, l, cl)
	case c == '\'':
		e.Fix = "JSON strings and keys take double quotes, not single quotes"
	case strings.Contains(msg, "after object key:value pair") || strings.Contains(msg, "after array element"):
		e.Fix = "a ',' is missing before this"
	case strings.Contains(msg, "looking for beginning of object key string"):
		e.Fix = `keys must be double-quoted strings: "key": value`
	}
	return e
}

func prevNonSpace(b []byte) (byte, int) {
	for i := len(b) - 1; i >= 0; i-- {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b[i], i
	}
	return 0, -1
}

// scanner walks text already validated by encoding/json to find where each
// member is. It never indexes past the end: on a scanner bug it records an
// error instead of panicking.
type scanner struct {
	src []byte
	i   int
	f   *File
	err error
}

func (s *scanner) fail() {
	if s.err == nil {
		s.err = s.f.errAt(min(s.i, len(s.src)), "internal error: daemon.json scanner lost its place", "report this as a usernsctl bug")
	}
	s.i = len(s.src)
}

func (s *scanner) peek() byte {
	if s.i >= len(s.src) {
		s.fail()
		return 0
	}
	return s.src[s.i]
}

func (s *scanner) ws() {
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// object scans an object at s.i and returns its members; path is the
// object's dotted path, for duplicates.
func (s *scanner) object(path string, depth int) []Member {
	if s.peek() != '{' {
		s.fail()
		return nil
	}
	s.i++
	var out []Member
	seen := map[string]int{}
	for s.err == nil {
		lead := s.i
		s.ws()
		if s.peek() == '}' {
			s.i++
			return out
		}
		m := Member{leadStart: lead, keyStart: s.i, parent: path}
		s.str()
		m.keyEnd = s.i
		if err := json.Unmarshal(s.src[m.keyStart:m.keyEnd], &m.Key); err != nil {
			s.fail()
			return out
		}
		m.Line, m.Col = s.f.position(m.keyStart)
		s.ws()
		if s.peek() != ':' {
			s.fail()
			return out
		}
		s.i++
		s.ws()
		m.valStart = s.i
		full := m.Key
		if path != "" {
			full = path + "." + m.Key
		}
		if s.peek() == '{' {
			kids := s.object(full, depth+1)
			if depth == 0 {
				m.Children = kids
			}
		} else {
			s.value(full, depth+1)
		}
		m.valEnd = s.i
		if first, dup := seen[m.Key]; dup {
			s.f.Duplicates = append(s.f.Duplicates, Duplicate{Path: full, Line: m.Line, Col: m.Col, First: first})
		} else {
			seen[m.Key] = m.Line
		}
		out = append(out, m)
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
		default:
			s.fail()
		}
	}
	return out
}

func (s *scanner) value(path string, depth int) {
	switch s.peek() {
	case '{':
		s.object(path, depth)
	case '[':
		s.i++
		for s.err == nil {
			s.ws()
			if s.peek() == ']' {
				s.i++
				return
			}
			s.value(path, depth)
			s.ws()
			if s.peek() == ',' {
				s.i++
			}
		}
	case '"':
		s.str()
	default: // number, true, false, null
		for s.i < len(s.src) {
			switch s.src[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return
			}
			s.i++
		}
	}
}

func (s *scanner) str() {
	if s.peek() != '"' {
		s.fail()
		return
	}
	for s.i++; s.i < len(s.src); s.i++ {
		switch s.src[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return
		}
	}
	s.fail()
}
