// Package subid parses and edits /etc/subuid and /etc/subgid (subuid(5)).
//
// The parser is strict and keeps every line's exact bytes and number, so
// that checks can name file:line for each problem and apply can append a
// range while leaving every other byte of the file as it was.
//
// It is hand-written rather than built on github.com/moby/sys/user's
// ParseSubID because that parser is lenient by design: it drops line
// numbers, trims whitespace, ignores conversion errors (a bad start reads as
// 0), accepts lines with missing or extra fields, and fails outright on a
// line longer than 64 KiB. A preflight has to report exactly those cases.
package subid

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/hugepage"
	"github.com/usernsctl/usernsctl/internal/ids"
)

// Limits.
const (
	// MaxID is the highest id a range may contain: ids are 32-bit.
	MaxID = 1<<32 - 1
	// Space is the number of ids: start+count may not exceed it.
	Space = 1 << 32
	// MaxLine is the longest line shadow's parser accepts (it copies each
	// line into a 1024-byte buffer and ignores longer ones).
	MaxLine = 1023
	// MaxSize bounds the file read: far beyond any real file (100,000 ranges
	// are about 3 MB), small enough that junk cannot exhaust memory.
	MaxSize = 32 << 20
)

// ErrTooLarge is returned for input larger than MaxSize.
var ErrTooLarge = fmt.Errorf("larger than %d bytes, not a subordinate id file", MaxSize)

// Range is one valid line: owner may use the ids of the range.
type Range struct {
	Owner string
	ids.Range
}

// NewRange is owner's range of count ids from start.
func NewRange(owner string, start, count uint64) Range {
	return Range{Owner: owner, Range: ids.Range{Start: start, Count: count}}
}

// String is the line as subuid(5) writes it, without the newline.
func (r Range) String() string { return fmt.Sprintf("%s:%d:%d", r.Owner, r.Start, r.Count) }

// OwnerUID returns the owner as a uid when it is numeric.
func (r Range) OwnerUID() (uint64, bool) {
	if !isDecimal(r.Owner) {
		return 0, false
	}
	n, err := strconv.ParseUint(r.Owner, 10, 32)
	return n, err == nil
}

// Line is one line of the file.
type Line struct {
	// No is the 1-based line number.
	No int
	// Raw is the line's exact text without its newline (it shares the
	// input's memory: a string keeps every Line 8 bytes smaller).
	Raw string
	// Range is valid when Problem is nil.
	Range Range
	// Problem says why the line is malformed; nil for a valid range.
	Problem *Problem
}

// Valid reports whether the line is a well-formed range.
func (l *Line) Valid() bool { return l.Problem == nil }

// Kind classifies a problem so that checks can word the remedy.
type Kind int

// Problem kinds.
const (
	Malformed Kind = iota // a line that is not owner:start:count
	Comment               // a "#" line: subuid(5) has no comments
	Blank                 // an empty line
	CRLF                  // a line ending in "\r"
	TooLong               // a line of MaxLine+1 bytes or more
	Binary                // a NUL byte or invalid UTF-8
	NoNewline             // the last line has no trailing newline
	BOM                   // a UTF-8 byte order mark before the first owner
	BadNumber             // a start or count that is not plain decimal or is out of range
)

// Problem is a malformed line or a file-level defect, with its position
// (Column is the bad field's 1-based byte column; 0 for the whole line).
type Problem struct {
	errs.Input
	Kind Kind
}

// File is a parsed subordinate id file that can render itself back.
type File struct {
	Name string
	// Lines are the lines as parsed; never modified after Parse, so that
	// clones share them.
	Lines []Line
	// Added are the lines Append added, in order.
	Added []Line

	data    []byte // the input, exactly
	fixNL   bool   // a newline is owed after the original last line
	appends [][]byte

	// valid caches Ranges over Lines: every check asks, and on 100,000
	// lines each answer is 800 KB of fresh memory. Concurrent checks share
	// one File, hence the once.
	valid *validCache
}

type validCache struct {
	once  sync.Once
	lines []*Line
}

// Parse reads a whole subuid or subgid file. name is used in messages
// ("/etc/subuid"). Malformed lines do not stop parsing: every one is
// recorded in Problems. The error is only for input that cannot be read or
// is larger than MaxSize.
//
// A *bytes.Buffer is taken over, not copied (the caller gives up its
// bytes): on a 100,000-line file a copy is megabytes of fresh memory for
// nothing.
func Parse(r io.Reader, name string) (*File, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return parseBytes(data, name)
}

func parseBytes(data []byte, name string) (*File, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %w", name, ErrTooLarge)
	}
	f := &File{Name: name, data: data, valid: &validCache{}}
	// Owners are substrings of one string over the input rather than one
	// allocation per line. The string aliases data instead of copying it:
	// data is never written after parsing (Parse owns its buffer), and on
	// a 100,000-line file the copy is megabytes of fresh memory for nothing.
	text := ""
	if len(data) > 0 {
		text = unsafe.String(&data[0], len(data))
	}
	// One pass to size the slice: 100,000-line files are a benchmark case.
	f.Lines = make([]Line, 0, bytes.Count(data, []byte{'\n'})+1)
	hugepage.Slice(f.Lines) // before the first write: see package hugepage
	no, off := 0, 0
	for off < len(data) {
		no++
		end := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			end = off + i
		}
		raw := data[off:end:end]
		l := Line{No: no, Raw: text[off:end]}
		l.Range, l.Problem = parseLine(raw, l.Raw)
		off = end + 1
		if l.Problem != nil {
			l.Problem.File, l.Problem.Line = name, no
		}
		f.Lines = append(f.Lines, l)
	}
	if len(f.Lines) > 0 && strings.HasPrefix(f.Lines[0].Raw, "\ufeff") {
		// Editors on Windows write it; shadow, dockerd and the kubelet read
		// it as part of the first owner's name, so that owner has no range.
		f.Lines[0].Range = Range{}
		f.Lines[0].Problem = &Problem{Kind: BOM, Input: errs.Input{Pos: errs.Pos{File: name, Line: 1, Column: 1},
			Msg: "a UTF-8 byte order mark (EF BB BF) starts the file: shadow and dockerd read it as part of the first owner's name"}}
	}
	return f, nil
}

// readAll reads at most MaxSize bytes, sized up front when the reader
// knows its length (a 100,000-line file is then read without regrowing).
func readAll(r io.Reader) ([]byte, error) {
	if b, ok := r.(*bytes.Buffer); ok {
		if b.Len() > MaxSize {
			return nil, ErrTooLarge
		}
		return b.Bytes(), nil
	}
	var buf bytes.Buffer
	if l, ok := r.(interface{ Len() int }); ok && l.Len() <= MaxSize {
		buf.Grow(l.Len() + bytes.MinRead) // ReadFrom wants MinRead free before EOF
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, MaxSize+1)); err != nil {
		return nil, err
	}
	if buf.Len() > MaxSize {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

// HasFinalNewline reports whether the rendered file ends with a newline
// (an empty file counts as ending with one).
func (f *File) HasFinalNewline() bool {
	if len(f.appends) > 0 || f.fixNL {
		return true
	}
	return len(f.data) == 0 || f.data[len(f.data)-1] == '\n'
}

// Problems lists every malformed line in order, then a missing trailing
// newline (shadow ≥4.19 refuses such a file, shadow-maint/shadow#1581).
func (f *File) Problems() []*Problem {
	var out []*Problem
	for i := range f.Lines {
		if p := f.Lines[i].Problem; p != nil {
			out = append(out, p)
		}
	}
	if !f.HasFinalNewline() {
		out = append(out, &Problem{Kind: NoNewline, Input: errs.Input{Pos: errs.At(f.Name, len(f.Lines)),
			Msg: "no newline at the end of the file: shadow 4.19 and later refuse to read it"}})
	}
	return out
}

// Err joins every problem, for callers that must refuse bad input.
func (f *File) Err() error {
	ps := f.Problems()
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// Ranges returns the valid lines, parsed and added. The result is shared:
// do not modify it.
func (f *File) Ranges() []*Line {
	if f.valid == nil { // a File built by hand rather than parsed
		f.valid = &validCache{}
	}
	f.valid.once.Do(func() {
		f.valid.lines = make([]*Line, 0, len(f.Lines))
		for i := range f.Lines {
			if f.Lines[i].Problem == nil {
				f.valid.lines = append(f.valid.lines, &f.Lines[i])
			}
		}
	})
	if len(f.Added) == 0 {
		return f.valid.lines
	}
	out := make([]*Line, 0, len(f.valid.lines)+len(f.Added))
	out = append(out, f.valid.lines...)
	for i := range f.Added {
		if f.Added[i].Problem == nil {
			out = append(out, &f.Added[i])
		}
	}
	return out
}

// Bytes renders the file: the input byte for byte, then a newline if one
// is owed, then the appended lines.
func (f *File) Bytes() []byte {
	n := len(f.data) + 1
	for _, a := range f.appends {
		n += len(a)
	}
	out := make([]byte, 0, n)
	out = append(out, f.data...)
	if f.fixNL {
		out = append(out, '\n')
	}
	for _, a := range f.appends {
		out = append(out, a...)
	}
	return out
}

// Source is the parsed input, exactly (do not modify).
func (f *File) Source() []byte { return f.data }

// Alias is f as the file name that holds the very same bytes (on most
// hosts /etc/subgid is a byte copy of /etc/subuid: useradd writes both):
// the parsed lines are shared, not parsed again. nil when a line has a
// problem, since problems name their file.
func (f *File) Alias(name string) *File {
	for i := range f.Lines {
		if f.Lines[i].Problem != nil {
			return nil
		}
	}
	c := f.Clone()
	c.Name = name
	return c
}

// SharesLines reports whether f and g hold the very same parsed lines (one
// is a clone or alias of the other): their ranges need not be looked at
// twice.
func (f *File) SharesLines(g *File) bool {
	return f != nil && g != nil && len(f.Lines) > 0 && len(f.Lines) == len(g.Lines) && &f.Lines[0] == &g.Lines[0]
}

// Clone returns a copy whose Append and EnsureFinalNewline do not affect
// f. The input and the parsed lines are shared (neither copy changes
// them), so a clone costs nothing however long the file.
func (f *File) Clone() *File {
	c := *f
	c.Added = slices.Clone(f.Added)
	c.appends = slices.Clone(f.appends)
	return &c
}

// EnsureFinalNewline adds the newline a last line lacks; it reports
// whether anything changed.
func (f *File) EnsureFinalNewline() bool {
	if f.HasFinalNewline() {
		return false
	}
	f.fixNL = true
	return true
}

// Append adds r as a new last line, first giving the previous last line
// its newline. Nothing else in the file changes. r must be a valid range.
func (f *File) Append(r Range) (*Line, error) {
	text := r.String()
	got, p := parseLine([]byte(text), text)
	if p != nil {
		return nil, fmt.Errorf("%s: cannot append %q: %s", f.Name, text, p.Msg)
	}
	f.EnsureFinalNewline()
	b := append([]byte(text), '\n')
	f.appends = append(f.appends, b)
	f.Added = append(f.Added, Line{No: len(f.Lines) + len(f.Added) + 1, Raw: text, Range: got})
	return &f.Added[len(f.Added)-1], nil
}

// parseLine checks one line (without its newline); str is the same bytes
// as a string. The Problem it returns has Name and Line unset.
func parseLine(raw []byte, str string) (Range, *Problem) {
	bad := func(kind Kind, col int, format string, a ...any) (Range, *Problem) {
		return Range{}, &Problem{Kind: kind, Input: errs.Input{Pos: errs.Pos{Column: col}, Msg: fmt.Sprintf(format, a...)}}
	}
	switch {
	case len(raw) > MaxLine:
		return bad(TooLong, 0, "line is %d bytes long; shadow ignores lines of %d bytes or more", len(raw), MaxLine+1)
	case bytes.IndexByte(raw, 0) >= 0:
		return bad(Binary, bytes.IndexByte(raw, 0)+1, "NUL byte: binary data, not owner:start:count")
	case !utf8.Valid(raw):
		return bad(Binary, invalidUTF8At(raw)+1, "invalid UTF-8: binary data, not owner:start:count")
	case len(raw) == 0:
		return bad(Blank, 0, "empty line: subuid(5) has no blank lines; shadow keeps it as an unparsable entry")
	case raw[0] == '#':
		return bad(Comment, 1, "comment line: subuid(5) has no comments; shadow keeps it as an unparsable entry and other readers may not skip it")
	case raw[len(raw)-1] == '\r':
		return bad(CRLF, len(raw), "line ends with a carriage return (DOS line ending): the count does not parse")
	}
	owner, rest, ok1 := bytes.Cut(raw, []byte{':'})
	start, count, ok2 := bytes.Cut(rest, []byte{':'})
	if !ok1 || !ok2 {
		n := bytes.Count(raw, []byte{':'}) + 1
		return bad(Malformed, 0, "%d field(s), want exactly 3 (owner:start:count)", n)
	}
	if i := bytes.IndexByte(count, ':'); i >= 0 {
		return bad(Malformed, len(owner)+len(start)+2+i+1, "%d fields, want exactly 3 (owner:start:count)", bytes.Count(raw, []byte{':'})+1)
	}
	startCol, countCol := len(owner)+2, len(owner)+len(start)+3
	if len(owner) == 0 {
		return bad(Malformed, 1, "empty owner")
	}
	if i := badOwnerByte(owner); i >= 0 {
		return bad(Malformed, i+1, "owner %q contains whitespace or a control character", owner)
	}
	if isDecimal(string(owner)) {
		if n, err := strconv.ParseUint(string(owner), 10, 64); err != nil || n >= MaxID {
			return bad(Malformed, 1, "numeric owner %s is not a valid uid (0..%d)", owner, MaxID-1)
		}
	}
	s, p := parseNumber(start, "start", startCol)
	if p != nil {
		return Range{}, p
	}
	c, p := parseNumber(count, "count", countCol)
	if p != nil {
		return Range{}, p
	}
	switch {
	case s > MaxID:
		return bad(BadNumber, startCol, "start %d is above %d", s, uint64(MaxID))
	case c == 0:
		return bad(BadNumber, countCol, "count 0: a range holds at least one id")
	case s+c > Space:
		return bad(BadNumber, countCol, "start %d + count %d = %d passes the last id %d", s, c, s+c, uint64(MaxID))
	}
	return NewRange(str[:len(owner)], s, c), nil
}

// parseNumber accepts plain decimal only. shadow reads numbers with base 0
// (a leading 0 is octal, 0x hex) while Docker reads base 10, so anything
// but plain decimal means different ranges to different readers.
func parseNumber(b []byte, what string, col int) (uint64, *Problem) {
	bad := func(format string, a ...any) (uint64, *Problem) {
		return 0, &Problem{Kind: BadNumber, Input: errs.Input{Pos: errs.Pos{Column: col}, Msg: fmt.Sprintf(format, a...)}}
	}
	switch {
	case len(b) == 0:
		return bad("empty %s", what)
	case !isDecimal(string(b)):
		return bad("%s %q is not a decimal number", what, b)
	case len(b) > 1 && b[0] == '0':
		return bad("%s %s has a leading zero: shadow reads it as octal, Docker as decimal", what, b)
	case len(b) > 10:
		return bad("%s %s is above %d", what, b, uint64(MaxID))
	}
	var n uint64 // ≤10 digits: fits; no strconv, to keep 100,000-line files cheap
	for _, c := range b {
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

// badOwnerByte returns the index of the first whitespace or control
// character in an owner (already valid UTF-8), or -1.
func badOwnerByte(b []byte) int {
	for i := 0; i < len(b); {
		if c := b[i]; c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return i
		}
		i += n
	}
	return -1
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return 0
}
