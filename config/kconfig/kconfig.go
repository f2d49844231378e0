// Package kconfig reads a kernel build configuration (.config,
// /boot/config-R, /proc/config.gz) and says how each option is set.
package kconfig

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// MaxSize bounds the (decompressed) bytes read: a real config is about
// 300 KB, and a gzip bomb at /proc/config.gz must not exhaust memory.
const MaxSize = 32 << 20

// maxLine bounds one line; kernel config lines are a few dozen bytes.
const maxLine = 64 << 10

// Candidates lists where a kernel's config may live, in the order the
// Kubernetes system-validators search them: the first that exists wins.
// release is the running kernel's release (uname -r); with "" only the
// release-independent paths are listed.
func Candidates(release string) []string {
	if release == "" || strings.ContainsAny(release, "/\x00") {
		return []string{"/proc/config.gz", "/usr/src/linux/.config"}
	}
	return []string{
		"/proc/config.gz",
		"/boot/config-" + release,
		"/usr/lib/modules/" + release + "/config",
		"/lib/modules/" + release + "/build/.config",
		"/usr/src/linux-" + release + "/.config",
		"/usr/src/linux/.config",
		"/usr/lib/ostree-boot/config-" + release,
		"/usr/lib/kernel/config-" + release,
		"/usr/src/linux-headers-" + release + "/.config",
	}
}

// State is how an option is configured.
type State int

// States. Absent means the file does not mention the option at all, which
// the kernel treats like NotSet; messages tell the two apart.
const (
	Absent  State = iota
	NotSet        // "# CONFIG_X is not set" or CONFIG_X=n
	Module        // CONFIG_X=m
	BuiltIn       // CONFIG_X=y
	Valued        // a string, number or hex value
)

func (s State) String() string {
	switch s {
	case NotSet:
		return "is not set"
	case Module:
		return "=m"
	case BuiltIn:
		return "=y"
	case Valued:
		return "has a value"
	}
	return "is absent"
}

// Option is one option as the file sets it.
type Option struct {
	Name  string // without the CONFIG_ prefix: "USER_NS"
	State State
	Value string // "y", "m", "n", or the unquoted string/number
	Line  int    // 0 when Absent
}

// Config is a parsed kernel config.
type Config struct {
	// File is the name given to Parse, used in messages.
	File string
	// Gzip is set when the input was gzip-compressed.
	Gzip bool
	// list holds the option lines in file order. Checks look up a handful
	// of options, so a scan beats building a 10,000-entry map.
	list []Option
}

// Len is the number of option lines (set or unset) in the file.
func (c *Config) Len() int { return len(c.list) }

// Lookup returns the option name ("USER_NS" or "CONFIG_USER_NS"); an
// option the file does not mention comes back with State Absent.
func (c *Config) Lookup(name string) Option {
	name = strings.TrimPrefix(name, "CONFIG_")
	for i := len(c.list) - 1; i >= 0; i-- { // a later assignment wins
		if c.list[i].Name == name {
			return c.list[i]
		}
	}
	return Option{Name: name, State: Absent}
}

// Where renders "file line N" for an option, or just the file when absent.
func (c *Config) Where(o Option) string {
	if o.Line == 0 {
		return c.File
	}
	return fmt.Sprintf("%s line %d", c.File, o.Line)
}

var gzipMagic = []byte{0x1f, 0x8b}

// Parse reads a kernel config from r, transparently decompressing gzip
// (detected by its magic bytes, not by the name). name is used in errors.
// Anything that is not an option line, a "# CONFIG_X is not set" line, a
// comment or a blank line is an error: a file that is not a kernel config
// must not pass for one. A later assignment of the same option wins, as
// in the kernel's own reader.
func Parse(r io.Reader, name string) (*Config, error) {
	br := bufio.NewReader(r)
	c := &Config{File: name}
	var src io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &errs.Input{Pos: errs.Pos{File: name}, Msg: "gzip: " + err.Error()}
		}
		defer zr.Close()
		c.Gzip = true
		src = zr
	}
	// One read and one string for the whole file: the options are
	// substrings of it, so a 10,000-line config costs no per-line garbage.
	data, err := io.ReadAll(io.LimitReader(src, MaxSize+1))
	if err != nil {
		lines := bytes.Count(data, []byte("\n"))
		if c.Gzip {
			return nil, &errs.Input{Pos: errs.Pos{File: name}, Msg: fmt.Sprintf("gzip: %v after line %d", err, lines)}
		}
		return nil, &errs.Input{Pos: errs.Pos{File: name, Line: lines + 1}, Msg: "read: " + err.Error()}
	}
	if len(data) > MaxSize {
		return nil, &errs.Input{Pos: errs.Pos{File: name}, Msg: fmt.Sprintf("larger than %d MiB: not a kernel config", MaxSize>>20)}
	}
	c.list = make([]Option, 0, bytes.Count(data, []byte("\n"))+1)
	rest := string(data)
	for n := 1; rest != ""; n++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if len(line) > maxLine {
			return nil, &errs.Input{Pos: errs.Pos{File: name, Line: n}, Msg: fmt.Sprintf("line longer than %d KiB: not a kernel config", maxLine>>10)}
		}
		if err := c.line(line, n); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Config) line(b string, n int) error {
	bad := func(col int, format string, a ...any) error {
		return &errs.Input{Pos: errs.Pos{File: c.File, Line: n, Column: col}, Msg: fmt.Sprintf(format, a...)}
	}
	if i := strings.IndexByte(b, 0); i >= 0 {
		return bad(i+1, "NUL byte: binary data, not a kernel config")
	}
	if !utf8.ValidString(b) {
		return bad(invalidAt(b)+1, "invalid UTF-8: not a kernel config")
	}
	s := strings.TrimRight(b, " \t\r")
	lead := len(s)
	s = strings.TrimLeft(s, " \t")
	lead -= len(s)
	switch {
	case s == "":
		return nil
	case strings.HasPrefix(s, "#"):
		// "# CONFIG_X is not set"; any other comment is ignored.
		rest := strings.TrimSpace(s[1:])
		if sym, ok := strings.CutSuffix(rest, " is not set"); ok && strings.HasPrefix(sym, "CONFIG_") {
			sym = strings.TrimPrefix(sym, "CONFIG_")
			if validName(sym) {
				c.list = append(c.list, Option{Name: sym, State: NotSet, Value: "n", Line: n})
			}
		}
		return nil
	case !strings.HasPrefix(s, "CONFIG_"):
		return bad(lead+1, "unexpected %q: want CONFIG_NAME=value or # CONFIG_NAME is not set", clip(s))
	}
	sym, val, ok := strings.Cut(strings.TrimPrefix(s, "CONFIG_"), "=")
	if !ok {
		return bad(lead+1, "%q has no '=': want CONFIG_NAME=value", clip(s))
	}
	if !validName(sym) {
		return bad(lead+1, "invalid option name %q", clip("CONFIG_"+sym))
	}
	o := Option{Name: sym, Line: n}
	valCol := lead + len("CONFIG_") + len(sym) + 2
	switch {
	case val == "y":
		o.State, o.Value = BuiltIn, "y"
	case val == "m":
		o.State, o.Value = Module, "m"
	case val == "n":
		o.State, o.Value = NotSet, "n"
	case strings.HasPrefix(val, `"`):
		str, err := unquote(val)
		if err != nil {
			return bad(valCol, "CONFIG_%s: %v", sym, err)
		}
		o.State, o.Value = Valued, str
	case val == "":
		o.State = Valued
	default:
		// Numbers and hex: the kernel writes them bare.
		if strings.ContainsAny(val, " \t\"") {
			return bad(valCol, "CONFIG_%s: unexpected value %q", sym, clip(val))
		}
		o.State, o.Value = Valued, val
	}
	c.list = append(c.list, o)
	return nil
}

// unquote undoes the kernel's string escaping: \" and \\.
func unquote(v string) (string, error) {
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		case '"':
			if i != len(v)-1 {
				return "", fmt.Errorf("text after the closing quote: %q", clip(v[i+1:]))
			}
			return b.String(), nil
		default:
			b.WriteByte(v[i])
		}
	}
	return "", errors.New("unterminated string")
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

func invalidAt(b string) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRuneInString(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return 0
}

// clip keeps error messages readable when the input is huge.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
