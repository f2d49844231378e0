// Package sysctl reads sysctl.d(5) files and works out which persisted
// value of a key the next boot applies, and which file and line set it.
package sysctl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// maxLine matches systemd-sysctl's LONG_LINE_MAX: a longer line stops the
// file.
const maxLine = 1 << 20

// Entry is one assignment (or glob exclusion) line.
type Entry struct {
	File string
	Line int
	// Key is canonical: dot-separated, with dots inside a name written as
	// "/" (see Normalize). Raw is the key as written.
	Key string
	Raw string
	// Value is the trimmed value; HasValue is false for a "-key" line
	// without "=", which excludes key from glob assignments.
	Value    string
	HasValue bool
	// IgnoreErrors is the "-" prefix: a failure to set it is not an error.
	IgnoreErrors bool
	// Glob is set when Key is a glob(7) pattern.
	Glob bool
}

// Where is "file:line".
func (e Entry) Where() string { return errs.At(e.File, e.Line).String() }

func (e Entry) String() string {
	if !e.HasValue {
		return e.Where() + ": -" + e.Raw
	}
	return fmt.Sprintf("%s: %s = %s", e.Where(), e.Raw, e.Value)
}

// File is a parsed sysctl.d file.
type File struct {
	Name    string
	Entries []Entry
	// Problems are lines that were skipped, as systemd-sysctl skips them.
	Problems []*errs.Input
}

// Parse reads one file. Like systemd-sysctl it skips a line it cannot use
// and goes on (the line is listed in Problems). The error is for input
// that is not a sysctl file at all (binary data, a line over 1 MiB) or
// cannot be read; the entries before it are kept in the returned File.
func Parse(r io.Reader, name string) (*File, error) {
	f := &File{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return f, &errs.Input{Pos: errs.Pos{File: name, Line: n, Column: i + 1}, Msg: "NUL byte: binary data, not a sysctl file"}
		}
		f.line(string(b), n)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return f, &errs.Input{Pos: errs.Pos{File: name, Line: n + 1}, Msg: fmt.Sprintf("line longer than %d MiB: not a sysctl file", maxLine>>20)}
		}
		return f, &errs.Input{Pos: errs.Pos{File: name, Line: n + 1}, Msg: "read: " + err.Error()}
	}
	return f, nil
}

func (f *File) line(s string, n int) {
	problem := func(col int, format string, a ...any) {
		f.Problems = append(f.Problems, &errs.Input{Pos: errs.Pos{File: f.Name, Line: n, Column: col}, Msg: fmt.Sprintf(format, a...)})
	}
	trimmed := strings.TrimLeft(s, " \t\r\f\v")
	lead := len(s) - len(trimmed)
	trimmed = strings.TrimRight(trimmed, " \t\r\f\v")
	if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
		return
	}
	if !utf8.ValidString(trimmed) {
		problem(lead+invalidAt(trimmed)+1, "invalid UTF-8: line skipped")
		return
	}
	e := Entry{File: f.Name, Line: n}
	rest := trimmed
	if rest[0] == '-' {
		e.IgnoreErrors = true
		rest = rest[1:]
	}
	key, val, hasVal := strings.Cut(rest, "=")
	key = strings.TrimSpace(key)
	switch {
	case !hasVal && !e.IgnoreErrors:
		problem(lead+1, "%q is not an assignment (want key = value): line skipped", clip(trimmed))
		return
	case key == "":
		problem(lead+1, "no key before '=': line skipped")
		return
	}
	e.Raw = key
	e.Key = Normalize(key)
	e.Glob = strings.ContainsAny(e.Key, "*?[")
	e.HasValue = hasVal
	if hasVal {
		e.Value = strings.TrimSpace(val)
	}
	f.Entries = append(f.Entries, e)
}

// Normalize returns the canonical form of a key. Either "." or "/"
// separates names; if the first separator is "/", a "." is part of a name
// (net/ipv4/conf/eth0.200/forwarding), which the canonical dotted form
// writes as "/" (net.ipv4.conf.eth0/200.forwarding), as sysctl.d(5) says.
func Normalize(key string) string {
	key = strings.Trim(key, "/.")
	i := strings.IndexAny(key, "./")
	if i < 0 || key[i] == '.' {
		return key
	}
	return swapSeparators(key)
}

// ProcPath is the /proc/sys file of a canonical key.
func ProcPath(key string) string {
	return "/proc/sys/" + swapSeparators(Normalize(key))
}

func swapSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, s)
}

// matches reports whether a glob entry applies to key, matching per name
// like glob(7) on /proc/sys paths (a "*" does not cross a separator).
func (e Entry) matches(key string) bool {
	if !e.Glob {
		return e.Key == key
	}
	ok, err := path.Match(swapSeparators(e.Key), swapSeparators(key))
	return err == nil && ok
}

func invalidAt(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return i
			}
		}
	}
	return 0
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
