// Package systemd reads systemd unit files and drop-ins the way systemd
// reads them (sections, Key=Value, "\" continuations, "#"/";" comments,
// empty assignments that reset a list), finds a unit and its drop-ins on a
// host, splits ExecStart= into words with environment variables expanded
// from Environment= and EnvironmentFile=, and extracts command-line flags,
// each with the file and line it came from.
package systemd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// MaxLine is systemd's LONG_LINE_MAX: a longer line (or continued line)
// makes systemd refuse the whole file.
const MaxLine = 1 << 20

// Entry is one Key=Value assignment.
type Entry struct {
	Section string
	Key     string
	// Value is stripped of surrounding whitespace, continuations joined.
	Value string
	File  string
	// Line is the physical line the assignment starts on.
	Line int

	marks []mark // where each physical line's text starts in Value
}

type mark struct{ off, line int }

// LineAt returns the physical line holding byte off of Value, for values
// continued over several lines.
func (e Entry) LineAt(off int) int {
	i := sort.Search(len(e.marks), func(i int) bool { return e.marks[i].off > off })
	if i == 0 {
		return e.Line
	}
	return e.marks[i-1].line
}

// Where is "FILE line N".
func (e Entry) Where() string { return fmt.Sprintf("%s line %d", e.File, e.Line) }

// Problem is something systemd logs about a file. Non-fatal problems are
// lines systemd ignores; a fatal one makes it refuse to load the unit.
type Problem struct {
	File  string
	Line  int
	Msg   string
	Fatal bool
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s", errs.At(p.File, p.Line), p.Msg) }

// File is one parsed unit file or drop-in.
type File struct {
	Name     string
	Entries  []Entry
	Problems []Problem
}

// Parse reads a unit file or drop-in. It returns an error for input
// systemd cannot read at all (a line over MaxLine) and for binary data;
// lines systemd would ignore are kept as Problems.
func Parse(r io.Reader, name string) (*File, error) {
	f := &File{Name: name}
	br := bufio.NewReader(r)
	var (
		section   string
		cont      []byte // continued logical line so far
		marks     []mark
		contStart int
		lineNo    int
		first     = true
	)
	for {
		raw, err := readLine(br, MaxLine)
		if errors.Is(err, errLineTooLong) {
			return nil, errs.Inputf(errs.At(name, lineNo+1), "line longer than %d bytes: systemd refuses this file", MaxLine)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if raw == nil && err == io.EOF {
			break
		}
		lineNo++
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			return nil, errs.Inputf(errs.At(name, lineNo), "binary data (a NUL byte): this is not a unit file")
		}
		if first {
			raw = bytes.TrimPrefix(raw, []byte("\xEF\xBB\xBF"))
			first = false
		}
		// systemd drops comment lines before joining continuations, so a
		// comment inside a continued ExecStart= is skipped.
		if t := bytes.TrimLeft(raw, " \t"); len(t) > 0 && (t[0] == '#' || t[0] == ';') {
			if err == io.EOF {
				break
			}
			continue
		}
		if cont == nil {
			contStart = lineNo
			marks = marks[:0]
		}
		if len(cont)+len(raw) > MaxLine {
			return nil, errs.Inputf(errs.At(name, lineNo), "continued line longer than %d bytes: systemd refuses this file", MaxLine)
		}
		marks = append(marks, mark{off: len(cont), line: lineNo})
		cont = append(cont, raw...)
		if endsEscaped(cont) {
			cont[len(cont)-1] = ' '
			if err == io.EOF {
				break
			}
			continue
		}
		fatal := f.parseLine(&section, cont, contStart, marks)
		cont = nil
		if err == io.EOF || fatal {
			return f, nil // systemd stops at a fatal line
		}
	}
	if cont != nil {
		// A continuation at the end of the file is parsed as it stands.
		f.parseLine(&section, cont, contStart, marks)
	}
	return f, nil
}

var errLineTooLong = errors.New("line too long")

// readLine returns one line without its terminator; nil and io.EOF at the
// end. It refuses lines longer than max without reading them whole.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max+2 {
			return nil, errLineTooLong
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return bytes.TrimSuffix(line, []byte("\r")), io.EOF
		case err != nil:
			return nil, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
}

// endsEscaped reports an odd number of trailing backslashes.
func endsEscaped(b []byte) bool {
	n := 0
	for i := len(b) - 1; i >= 0 && b[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func (f *File) problem(line int, fatal bool, format string, a ...any) {
	f.Problems = append(f.Problems, Problem{File: f.Name, Line: line, Msg: fmt.Sprintf(format, a...), Fatal: fatal})
}

// parseLine parses one logical line; it reports a fatal problem.
// whitespace is systemd's WHITESPACE.
const whitespace = " \t\n\r"

func (f *File) parseLine(section *string, buf []byte, line int, marks []mark) (fatal bool) {
	lead := len(buf) - len(bytes.TrimLeft(buf, whitespace))
	l := bytes.Trim(buf, whitespace)
	if len(l) == 0 {
		return false
	}
	if !utf8.Valid(l) {
		f.problem(line, false, "invalid UTF-8, line ignored")
		return false
	}
	if l[0] == '[' {
		if l[len(l)-1] != ']' {
			f.problem(line, true, "invalid section header %q: systemd refuses this file", l)
			return true
		}
		*section = string(l[1 : len(l)-1])
		return false
	}
	if *section == "" {
		f.problem(line, false, "assignment outside of a section, ignored")
		return false
	}
	eq := bytes.IndexByte(l, '=')
	switch {
	case eq < 0:
		f.problem(line, false, "missing '=', line ignored")
		return false
	case eq == 0:
		f.problem(line, false, "missing key name before '=', line ignored")
		return false
	}
	key := string(bytes.Trim(l[:eq], whitespace))
	rest := l[eq+1:]
	val := bytes.Trim(rest, whitespace)
	// Offset of the value in buf, to map words back to physical lines.
	voff := lead + eq + 1 + (len(rest) - len(bytes.TrimLeft(rest, whitespace)))
	e := Entry{Section: *section, Key: key, Value: string(val), File: f.Name, Line: line}
	for _, m := range marks {
		e.marks = append(e.marks, mark{off: m.off - voff, line: m.line})
	}
	f.Entries = append(f.Entries, e)
	return false
}
