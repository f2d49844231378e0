package systemd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// EnvVar is one environment assignment and where it was made.
type EnvVar struct {
	Name, Value string
	File        string
	Line        int
}

// Env is a service's environment by variable name.
type Env map[string]EnvVar

// EnvFileRef is one EnvironmentFile= of a unit.
type EnvFileRef struct {
	Entry Entry
	// Path is the file (or glob) named; Optional is the "-" prefix.
	Path     string
	Optional bool
	// Files are the files read (more than one for a glob).
	Files []string
}

// Environment is what Environment= and EnvironmentFile= give the service's
// commands: Environment= first, then the files in order (they override it,
// as in systemd.exec(5)). A missing file without the "-" prefix is a fatal
// problem: systemd will not start the service.
func (u *Unit) Environment(r Reader) (Env, []EnvFileRef, []Problem) {
	env := Env{}
	var probs []Problem
	for _, e := range u.All("Service", "Environment") {
		words, err := splitWords(e.Value, true)
		if err != nil {
			probs = append(probs, Problem{File: e.File, Line: e.Line, Msg: "Environment=: " + err.Error()})
			continue
		}
		for _, w := range words {
			name, val, ok := strings.Cut(w.text, "=")
			if !ok || !validEnvName(name) {
				probs = append(probs, Problem{File: e.File, Line: e.LineAt(w.off), Msg: fmt.Sprintf("Environment=: invalid assignment %q, ignored", w.text)})
				continue
			}
			env[name] = EnvVar{Name: name, Value: val, File: e.File, Line: e.LineAt(w.off)}
		}
	}
	var refs []EnvFileRef
	for _, e := range u.All("Service", "EnvironmentFile") {
		ref := EnvFileRef{Entry: e, Path: e.Value}
		if p, ok := strings.CutPrefix(ref.Path, "-"); ok {
			ref.Path, ref.Optional = p, true
		}
		paths := []string{ref.Path}
		if strings.ContainsAny(ref.Path, "*?[") {
			paths, _ = r.Glob(ref.Path)
		}
		for _, p := range paths {
			b, err := r.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				probs = append(probs, Problem{File: e.File, Line: e.Line, Msg: fmt.Sprintf("EnvironmentFile=%s: %v", p, err), Fatal: !ref.Optional})
				continue
			}
			vars, ps, err := ParseEnvFile(bytes.NewReader(b), p)
			if err != nil {
				probs = append(probs, Problem{File: e.File, Line: e.Line, Msg: fmt.Sprintf("EnvironmentFile=: %v", err), Fatal: !ref.Optional})
				continue
			}
			probs = append(probs, ps...)
			ref.Files = append(ref.Files, p)
			for _, v := range vars {
				env[v.Name] = v
			}
		}
		if len(ref.Files) == 0 && !ref.Optional {
			probs = append(probs, Problem{File: e.File, Line: e.Line, Fatal: true,
				Msg: fmt.Sprintf("EnvironmentFile=%s does not exist and has no \"-\" prefix: systemd will not start the service", ref.Path)})
		}
		refs = append(refs, ref)
	}
	return env, refs, probs
}

// ParseEnvFile reads an environment file the way systemd's EnvironmentFile=
// does (and close enough to how a shell sources /etc/sysconfig and
// /etc/default files): KEY=VALUE lines, "#" and ";" comments, single and
// double quotes, backslash continuations. Lines that are not assignments
// (shell code such as `if [ ... ]; then`) are skipped and reported, as
// systemd skips them. It fails on binary data and on lines over MaxLine.
func ParseEnvFile(r io.Reader, name string) ([]EnvVar, []Problem, error) {
	br := bufio.NewReader(r)
	var (
		vars  []EnvVar
		probs []Problem
		buf   []byte
		start int
		n     int
	)
	flush := func() {
		if v, ok, msg := envAssignment(buf); ok {
			v.File, v.Line = name, start
			vars = append(vars, v)
		} else if msg != "" {
			probs = append(probs, Problem{File: name, Line: start, Msg: msg})
		}
		buf = nil
	}
	for {
		raw, err := readLine(br, MaxLine)
		if errors.Is(err, errLineTooLong) {
			return nil, nil, errs.Inputf(errs.At(name, n+1), "line longer than %d bytes", MaxLine)
		}
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		if raw == nil && err == io.EOF {
			break
		}
		n++
		if bytes.IndexByte(raw, 0) >= 0 {
			return nil, nil, errs.Inputf(errs.At(name, n), "binary data (a NUL byte): not an environment file")
		}
		if buf == nil {
			start = n
		} else {
			buf = append(buf, '\n')
		}
		buf = append(buf, raw...)
		if len(buf) > MaxLine {
			return nil, nil, errs.Inputf(errs.At(name, n), "continued line longer than %d bytes", MaxLine)
		}
		if !envContinues(buf) || err == io.EOF {
			flush()
		}
		if err == io.EOF {
			break
		}
	}
	if buf != nil {
		flush()
	}
	return vars, probs, nil
}

// envContinues reports whether a logical line goes on: an open double or
// single quote, or a trailing backslash outside single quotes.
func envContinues(b []byte) bool {
	t := bytes.TrimLeft(b, " \t")
	if len(t) > 0 && (t[0] == '#' || t[0] == ';') {
		return false
	}
	var quote byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case c == '\\':
			if i+1 == len(b) {
				return true
			}
			i++
		case quote == '"':
			if c == '"' {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		}
	}
	return quote != 0
}

// envAssignment parses one logical line. ok is false for blank lines and
// comments (msg "") and for lines that are not assignments (msg set).
func envAssignment(b []byte) (v EnvVar, ok bool, msg string) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] == '#' || t[0] == ';' {
		return v, false, ""
	}
	if !utf8.Valid(t) {
		return v, false, "invalid UTF-8, line ignored"
	}
	s := string(t)
	// sysconfig files written for shells sometimes say "export KEY=...".
	s = strings.TrimPrefix(s, "export ")
	eq := strings.IndexByte(s, '=')
	if eq < 0 {
		return v, false, fmt.Sprintf("not an assignment, ignored: %q", short(s))
	}
	key := strings.TrimSpace(s[:eq])
	if !validEnvName(key) {
		return v, false, fmt.Sprintf("invalid variable name %q, line ignored", short(key))
	}
	val := strings.TrimLeft(s[eq+1:], " \t")
	var out strings.Builder
	for i := 0; i < len(val); i++ {
		c := val[i]
		switch c {
		case '\'':
			end := strings.IndexByte(val[i+1:], '\'')
			if end < 0 {
				return v, false, "unterminated ' quote, line ignored"
			}
			out.WriteString(val[i+1 : i+1+end])
			i += 1 + end
		case '"':
			j := i + 1
			for ; j < len(val) && val[j] != '"'; j++ {
				if val[j] == '\\' && j+1 < len(val) {
					j++
					switch val[j] {
					case '"', '\\', '`', '$':
						out.WriteByte(val[j])
					case '\n':
					default:
						out.WriteByte('\\')
						out.WriteByte(val[j])
					}
					continue
				}
				out.WriteByte(val[j])
			}
			if j >= len(val) {
				return v, false, "unterminated \" quote, line ignored"
			}
			i = j
		case '\\':
			if i+1 < len(val) {
				i++
				if val[i] != '\n' {
					out.WriteByte(val[i])
				}
			}
		default:
			out.WriteByte(c)
		}
	}
	value := out.String()
	if !strings.ContainsAny(val, `'"\`) {
		value = strings.TrimRight(value, " \t")
	}
	return EnvVar{Name: key, Value: value}, true, ""
}

func short(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}
