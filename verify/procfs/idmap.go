package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// IDMap is one line of /proc/PID/uid_map or gid_map: ids Inside ..
// Inside+Count-1 of the process's user namespace are ids Outside ..
// Outside+Count-1 of the reader's (see user_namespaces(7)).
type IDMap struct {
	Inside  uint64 `json:"inside"`
	Outside uint64 `json:"outside"`
	Count   uint64 `json:"count"`
}

// IDSpace is the number of 32-bit ids; the initial namespace maps all of
// them: `0 0 4294967295` (one short: (uid_t)-1 is never mapped).
const IDSpace = 1 << 32

// maxMapLines is the kernel's limit on lines in one map (340 since 4.15);
// anything longer is not a file the kernel wrote.
const maxMapLines = 340

// maxMapLine bounds one line: three 10-digit numbers and padding.
const maxMapLine = 256

// String is the line as the kernel writes it, without padding.
func (m IDMap) String() string { return fmt.Sprintf("%d %d %d", m.Inside, m.Outside, m.Count) }

// OutsideEnd is the first outside id after the line.
func (m IDMap) OutsideEnd() uint64 { return m.Outside + m.Count }

// FormatMap joins a map's lines with "; " for messages.
func FormatMap(ms []IDMap) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, "; ")
}

// Identity reports whether the map is the initial namespace's: inside ids
// are outside ids, so container root is the reader's root.
func Identity(ms []IDMap) bool {
	return len(ms) == 1 && ms[0].Inside == 0 && ms[0].Outside == 0 && ms[0].Count >= IDSpace-1
}

// ToOutside returns the outside id of inside id id; ok is false when the
// map does not map it.
func ToOutside(ms []IDMap, id uint64) (uint64, bool) {
	for _, m := range ms {
		if id >= m.Inside && id < m.Inside+m.Count {
			return m.Outside + (id - m.Inside), true
		}
	}
	return 0, false
}

// ParseIDMap reads a uid_map or gid_map. name is used in errors
// ("/proc/4321/uid_map").
//
// It is strict on purpose, unlike github.com/moby/sys/user.ParseIDMap,
// which reads a field that is not a number as 0 and ignores missing or
// extra fields: a junk line would read as `0 0 0`, root mapped to root,
// and a recorded tree (--root) can hold junk. Errors name the line and
// column.
func ParseIDMap(r io.Reader, name string) ([]IDMap, error) {
	var out []IDMap
	br := bufio.NewReaderSize(r, 4096)
	for no := 1; ; no++ {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) && line == nil {
			return out, nil
		}
		if errors.Is(err, errLong) {
			return nil, errs.Inputf(errs.At(name, no), "line longer than %d bytes: not a kernel id map", maxMapLine)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(out) == maxMapLines {
			return nil, errs.Inputf(errs.At(name, no), "more than %d lines: not a kernel id map", maxMapLines)
		}
		m, col, perr := parseMapLine(line)
		if perr != nil {
			if col > 0 {
				return nil, errs.Inputf(errs.Pos{File: name, Line: no, Column: col}, "%v", perr)
			}
			return nil, errs.Inputf(errs.At(name, no), "%v", perr)
		}
		if m != nil {
			out = append(out, *m)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
	}
}

var errLong = errors.New("line too long")

// readLine returns one line without its newline, or errLong once a line
// passes maxMapLine (the rest is not read: junk must not be slurped).
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			if len(buf) == 0 {
				return nil, err
			}
			return buf, err
		}
		if b == '\n' {
			if buf == nil {
				buf = []byte{}
			}
			return buf, nil
		}
		if len(buf) == maxMapLine {
			return nil, errLong
		}
		buf = append(buf, b)
	}
}

// parseMapLine parses "inside outside count" with any blank padding. A
// blank line gives nil. col is the 1-based column of the bad field.
func parseMapLine(line []byte) (*IDMap, int, error) {
	if i := bytes.IndexByte(line, 0); i >= 0 {
		return nil, i + 1, errors.New("NUL byte: binary data, not an id map")
	}
	if !utf8.Valid(line) {
		return nil, 0, errors.New("invalid UTF-8: binary data, not an id map")
	}
	var vals [3]uint64
	n, col := 0, 0
	for i := 0; i < len(line); {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if n == 3 {
			return nil, i + 1, fmt.Errorf("extra field %q: want inside, outside and count", clip(line[i:j]))
		}
		v, err := strconv.ParseUint(string(line[i:j]), 10, 64)
		if err != nil || v > IDSpace {
			return nil, i + 1, fmt.Errorf("%q is not an id or count (0..%d)", clip(line[i:j]), uint64(IDSpace))
		}
		if n == 0 {
			col = i + 1
		}
		vals[n] = v
		n++
		i = j
	}
	switch {
	case n == 0:
		return nil, 0, nil
	case n < 3:
		return nil, col, fmt.Errorf("%d field(s): want inside, outside and count", n)
	}
	m := IDMap{Inside: vals[0], Outside: vals[1], Count: vals[2]}
	if m.Count == 0 || m.Inside+m.Count > IDSpace || m.Outside+m.Count > IDSpace {
		return nil, col, fmt.Errorf("%q is not a valid range: ids are 32-bit and the count at least 1", m.String())
	}
	return &m, 0, nil
}

func clip(b []byte) string {
	if len(b) > 24 {
		return string(b[:24]) + "…"
	}
	return string(b)
}
