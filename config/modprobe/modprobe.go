// Package modprobe reads modprobe.d(5) files for the module options they
// set, so that a check can tell whether a module parameter (overlay's
// metacopy) survives a reboot.
package modprobe

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// Dirs are the directories kmod reads, highest priority first: a file in
// an earlier directory hides a file of the same name in a later one.
var Dirs = []string{
	"/etc/modprobe.d",
	"/run/modprobe.d",
	"/usr/local/lib/modprobe.d",
	"/usr/lib/modprobe.d",
	"/lib/modprobe.d",
}

// Option is one module parameter set by an `options` line.
type Option struct {
	Module, Param, Value string
	File                 string
	Line                 int
}

// Where is "FILE line N".
func (o Option) Where() string { return fmt.Sprintf("%s line %d", o.File, o.Line) }

// maxLine bounds a logical line; kmod's own limit is far below it.
const maxLine = 64 << 10

// ParseOptions returns the parameters set by `options MODULE p=v ...`
// lines, in file order. Module names compare with '-' and '_' equal, as
// kmod does; they are returned with '_'. Other commands are ignored.
func ParseOptions(r io.Reader, name string) ([]Option, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	var out []Option
	var logical strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if !utf8.Valid(line) || bytes.IndexByte(line, 0) >= 0 {
			return nil, errs.Inputf(errs.At(name, n), "not a text file (invalid UTF-8 or NUL byte)")
		}
		if logical.Len() == 0 {
			start = n
		}
		s := string(line)
		if strings.HasSuffix(s, "\\") {
			logical.WriteString(strings.TrimSuffix(s, "\\"))
			logical.WriteByte(' ')
			continue
		}
		logical.WriteString(s)
		out = appendOptions(out, logical.String(), name, start)
		logical.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", errs.At(name, n+1), err)
	}
	if logical.Len() > 0 {
		out = appendOptions(out, logical.String(), name, start)
	}
	return out, nil
}

func appendOptions(out []Option, line, name string, n int) []Option {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "options" {
		return out
	}
	mod := strings.ReplaceAll(f[1], "-", "_")
	for _, kv := range f[2:] {
		if strings.HasPrefix(kv, "#") {
			break
		}
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, Option{Module: mod, Param: k, Value: v, File: name, Line: n})
	}
	return out
}

// Bool reads a kernel boolean parameter value the way the kernel does
// (kstrtobool): y/Y/1/on are true, n/N/0/off are false.
func Bool(v string) (value, ok bool) {
	if v == "" {
		return false, false
	}
	switch v[0] {
	case 'y', 'Y', '1':
		return true, true
	case 'n', 'N', '0':
		return false, true
	case 'o', 'O':
		if len(v) > 1 {
			switch v[1] {
			case 'n', 'N':
				return true, true
			case 'f', 'F':
				return false, true
			}
		}
	}
	return false, false
}
