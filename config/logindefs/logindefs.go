// Package logindefs reads the settings of /etc/login.defs (login.defs(5))
// that decide subordinate id allocation and system account creation.
//
// It follows shadow's reader: a line is "NAME value", leading blanks and
// "#" lines are skipped, the value may be quoted, the last definition of a
// name wins, and numbers may be decimal, octal (leading 0) or hex (0x), as
// shadow reads them with base 0. Unlike shadow, which prints a warning and
// falls back to the default, a value that does not parse is an error here
// with its file, line and column, so that nothing is allocated from a
// misread setting.
package logindefs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// MaxSize bounds the input: login.defs is a few KiB.
const MaxSize = 1 << 20

// maxLine is shadow's read buffer: a longer line is read in pieces.
const maxLine = 1023

// Setting is one numeric value and where it came from.
type Setting struct {
	Value uint64
	// Line is where the value was set; 0 means the built-in default.
	Line int
}

// Defs are the settings usernsctl uses. Each carries shadow's default when
// the file does not set it.
type Defs struct {
	Name string

	SubUIDMin, SubUIDMax, SubUIDCount Setting
	SubGIDMin, SubGIDMax, SubGIDCount Setting

	UIDMin, UIDMax, SysUIDMin, SysUIDMax Setting
	GIDMin, GIDMax, SysGIDMin, SysGIDMax Setting
}

// Defaults are shadow's values for a missing file or key. SYS_UID_MAX and
// SYS_GID_MAX default to UID_MIN-1 and GID_MIN-1: see Parse.
func Defaults() *Defs {
	return &Defs{
		SubUIDMin: Setting{Value: 100000}, SubUIDMax: Setting{Value: 600100000}, SubUIDCount: Setting{Value: 65536},
		SubGIDMin: Setting{Value: 100000}, SubGIDMax: Setting{Value: 600100000}, SubGIDCount: Setting{Value: 65536},
		UIDMin: Setting{Value: 1000}, UIDMax: Setting{Value: 60000}, SysUIDMin: Setting{Value: 101}, SysUIDMax: Setting{Value: 999},
		GIDMin: Setting{Value: 1000}, GIDMax: Setting{Value: 60000}, SysGIDMin: Setting{Value: 101}, SysGIDMax: Setting{Value: 999},
	}
}

func (d *Defs) fields() map[string]*Setting {
	return map[string]*Setting{
		"SUB_UID_MIN": &d.SubUIDMin, "SUB_UID_MAX": &d.SubUIDMax, "SUB_UID_COUNT": &d.SubUIDCount,
		"SUB_GID_MIN": &d.SubGIDMin, "SUB_GID_MAX": &d.SubGIDMax, "SUB_GID_COUNT": &d.SubGIDCount,
		"UID_MIN": &d.UIDMin, "UID_MAX": &d.UIDMax, "SYS_UID_MIN": &d.SysUIDMin, "SYS_UID_MAX": &d.SysUIDMax,
		"GID_MIN": &d.GIDMin, "GID_MAX": &d.GIDMax, "SYS_GID_MIN": &d.SysGIDMin, "SYS_GID_MAX": &d.SysGIDMax,
	}
}

// Parse reads login.defs. name is used in messages. The returned Defs is
// always usable (defaults where a value is missing or bad); the error joins
// an *Error for every setting usernsctl reads that does not parse, and is
// also set when the input cannot be read or exceeds MaxSize (then Defs is
// nil).
func Parse(r io.Reader, name string) (*Defs, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a login.defs file", name, MaxSize)
	}
	d := Defaults()
	d.Name = name
	fields := d.fields()
	var bad []error
	for no := 1; len(data) > 0; no++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		key, val, col, ok := split(line)
		if !ok {
			continue
		}
		f, known := fields[key]
		if !known {
			continue
		}
		if len(line) > maxLine {
			bad = append(bad, errs.Inputf(errs.Pos{File: name, Line: no, Column: 1}, "%s: line is %d bytes long; shadow reads it in %d-byte pieces", key, len(line), maxLine))
			continue
		}
		n, err := parseUint(val)
		if err != nil {
			bad = append(bad, errs.Inputf(errs.Pos{File: name, Line: no, Column: col}, "%s: %v", key, err))
			continue
		}
		*f = Setting{Value: n, Line: no}
	}
	// shadow: SYS_UID_MAX defaults to UID_MIN-1 (likewise for GIDs).
	if d.SysUIDMax.Line == 0 && d.UIDMin.Value > 0 {
		d.SysUIDMax.Value = d.UIDMin.Value - 1
	}
	if d.SysGIDMax.Line == 0 && d.GIDMin.Value > 0 {
		d.SysGIDMax.Value = d.GIDMin.Value - 1
	}
	return d, errors.Join(bad...)
}

// split breaks a line the way shadow does: trailing blanks trimmed, name up
// to the first blank, value after blanks and opening quotes, up to the next
// quote. col is the value's 1-based column.
func split(line []byte) (key, val string, col int, ok bool) {
	line = bytes.TrimRight(line, " \t\r\n\v\f")
	start := len(line) - len(bytes.TrimLeft(line, " \t"))
	rest := line[start:]
	if len(rest) == 0 || rest[0] == '#' {
		return "", "", 0, false
	}
	i := bytes.IndexAny(rest, " \t")
	if i < 0 {
		return "", "", 0, false // a name with no value: shadow skips it
	}
	k := rest[:i]
	v := bytes.TrimLeft(rest[i:], " \t")
	col = len(line) - len(v) + 1
	v = bytes.TrimLeft(v, " \t\"")
	if q := bytes.IndexByte(v, '"'); q >= 0 {
		v = v[:q]
	}
	return string(k), string(v), col, true
}

// parseUint reads a number as strtoul with base 0 would, but strictly: no
// sign, no trailing junk, and it must fit in 32 bits (ids are 32-bit).
func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty value")
	}
	base, digits := 10, s
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	n, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s is out of range", s)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n > 1<<32-1 {
		return 0, fmt.Errorf("%s is larger than the last id 4294967295", s)
	}
	return n, nil
}

// SubIDsDisabled reports whether useradd allocates no subordinate uids
// (SUB_UID_COUNT 0) — and likewise gids.
func (d *Defs) SubIDsDisabled() (uids, gids bool) {
	return d.SubUIDCount.Value == 0, d.SubGIDCount.Value == 0
}

// Where names the origin of a setting for messages: "/etc/login.defs:23"
// or "default".
func (d *Defs) Where(s Setting) string {
	if s.Line == 0 {
		return "default"
	}
	return errs.At(d.Name, s.Line).String()
}
