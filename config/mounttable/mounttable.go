// Package mounttable parses /proc/PID/mountinfo with
// github.com/moby/sys/mountinfo, and says on which line bad input is.
package mounttable

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moby/sys/mountinfo"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// Parse parses a mountinfo file with github.com/moby/sys/mountinfo.
// That parser names the bad line's text but not its number, so on error the
// input is walked again, line by line, to say where.
func Parse(r io.Reader, name string) ([]*mountinfo.Info, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ms, err := mountinfo.GetMountsFromReader(bytes.NewReader(data), nil)
	if err == nil {
		return ms, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if _, lerr := mountinfo.GetMountsFromReader(strings.NewReader(sc.Text()), nil); lerr != nil {
			return nil, errs.Inputf(errs.At(name, n), "not a mountinfo line: %s", clip(lerr.Error()))
		}
	}
	if serr := sc.Err(); serr != nil {
		if errors.Is(serr, bufio.ErrTooLong) {
			return nil, errs.Inputf(errs.At(name, n+1), "a line longer than 1 MiB: not a mount table")
		}
		return nil, errs.Inputf(errs.At(name, n+1), "%v", serr)
	}
	return nil, fmt.Errorf("%s: %w", name, err)
}

// clip shortens a message that quotes a whole input line (moby's parser
// does) and blanks control bytes, so junk does not end up in the report.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > 200 {
		i := 200
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		return s[:i] + "…"
	}
	return s
}
