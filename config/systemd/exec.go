package systemd

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Word is one argument of a command line and where it was written.
type Word struct {
	Text string
	File string
	Line int
	// Via is the variable the word was expanded from ("$OPTIONS"), "" when
	// it was written in the command itself.
	Via string
}

// Where is "FILE line N", naming the variable for expanded words.
func (w Word) Where() string {
	s := fmt.Sprintf("%s line %d", w.File, w.Line)
	if w.Via != "" {
		s += " (via " + w.Via + ")"
	}
	return s
}

// Command is one command of an Exec*= setting.
type Command struct {
	Entry Entry
	// Prefix holds the special executable prefixes written ("-", "@", "+",
	// "!", "!!", ":").
	Prefix string
	// Argv[0] is the executable; with the "@" prefix, the argv[0] override
	// is dropped.
	Argv []Word
}

// Commands splits an Exec*= value the way systemd does: executable
// prefixes, words separated by whitespace, single and double quotes, C
// escapes, "%%", commands separated by a lone ";". Environment variables
// are then expanded as systemd does at exec time: a word that is exactly
// $NAME becomes the variable's value split at whitespace (zero or more
// words), ${NAME} anywhere in a word is replaced by the value, $$ is $.
// Words keep the line they were written on, or the line of the variable's
// assignment when expanded from one.
func Commands(e Entry, env Env) ([]Command, error) {
	val := e.Value
	words, err := splitWords(val, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %s=: %w", e.Where(), e.Key, err)
	}
	var out []Command
	for len(words) > 0 {
		n := 0
		for n < len(words) && !(words[n].text == ";" && !words[n].quoted) {
			n++
		}
		cmd, err := command(e, words[:n], env)
		if err != nil {
			return nil, err
		}
		if len(cmd.Argv) > 0 {
			out = append(out, cmd)
		}
		if n == len(words) {
			break
		}
		words = words[n+1:]
	}
	return out, nil
}

func command(e Entry, words []rawWord, env Env) (Command, error) {
	c := Command{Entry: e}
	if len(words) == 0 {
		return c, nil
	}
	first := words[0]
	p := strings.TrimLeft(first.text, "-@:+!")
	c.Prefix = first.text[:len(first.text)-len(p)]
	if p == "" {
		return c, fmt.Errorf("%s: %s= has prefixes but no executable", e.Where(), e.Key)
	}
	words[0].text = p
	if strings.Contains(c.Prefix, "@") && len(words) > 1 {
		words = append(words[:1:1], words[2:]...)
	}
	for _, w := range words {
		c.Argv = append(c.Argv, expand(e, w, env)...)
	}
	return c, nil
}

// expand applies systemd's exec-time variable substitution to one word.
func expand(e Entry, w rawWord, env Env) []Word {
	at := Word{File: e.File, Line: e.LineAt(w.off)}
	if name, ok := strings.CutPrefix(w.text, "$"); ok && validEnvName(name) {
		v, set := env[name]
		if !set {
			return nil
		}
		parts, err := splitWords(v.Value, false)
		if err != nil { // systemd falls back to whitespace splitting
			parts = nil
			for _, f := range strings.Fields(v.Value) {
				parts = append(parts, rawWord{text: f})
			}
		}
		out := make([]Word, len(parts))
		for i, p := range parts {
			out[i] = Word{Text: p.text, File: v.File, Line: v.Line, Via: "$" + name}
		}
		return out
	}
	var b strings.Builder
	var via []string
	s := w.text
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			name := s[i+2 : i+2+end]
			b.WriteString(env[name].Value)
			via = append(via, "${"+name+"}")
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	at.Text = b.String()
	at.Via = strings.Join(via, " ")
	return []Word{at}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

type rawWord struct {
	text   string
	off    int // byte offset of the word's start in the value
	quoted bool
}

// splitWords splits s at unquoted whitespace, removing quotes. With
// cunescape, backslash sequences are C escapes (unknown ones kept as
// written, as systemd's "relaxed" mode does); without, a backslash makes
// the next character literal.
func splitWords(s string, cunescape bool) ([]rawWord, error) {
	var (
		out   []rawWord
		cur   strings.Builder
		in    bool
		quote byte
		w     rawWord
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !in {
			if isSpace(c) {
				continue
			}
			in, w = true, rawWord{off: i}
			cur.Reset()
		}
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				cur.WriteByte('\\')
				continue
			}
			if !cunescape {
				i++
				cur.WriteByte(s[i])
				continue
			}
			n := unescape(s[i+1:], &cur)
			i += n
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, w.quoted = c, true
		case c == '%' && cunescape && i+1 < len(s) && s[i+1] == '%':
			cur.WriteByte('%')
			i++
		case isSpace(c):
			w.text = cur.String()
			out = append(out, w)
			in = false
		default:
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote: systemd ignores this setting", quote)
	}
	if in {
		w.text = cur.String()
		out = append(out, w)
	}
	return out, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// unescape writes the C escape at the start of s (after the backslash) and
// returns how many bytes of s it used.
func unescape(s string, b *strings.Builder) int {
	simple := map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
		'\\': '\\', '"': '"', '\'': '\'', 's': ' '}
	c := s[0]
	if r, ok := simple[c]; ok {
		b.WriteByte(r)
		return 1
	}
	hex := func(n int) (rune, bool) {
		if len(s) < 1+n {
			return 0, false
		}
		v, err := strconv.ParseUint(s[1:1+n], 16, 32)
		return rune(v), err == nil
	}
	switch c {
	case 'x':
		if r, ok := hex(2); ok {
			b.WriteByte(byte(r))
			return 3
		}
	case 'u':
		if r, ok := hex(4); ok && utf8.ValidRune(r) {
			b.WriteRune(r)
			return 5
		}
	case 'U':
		if r, ok := hex(8); ok && utf8.ValidRune(r) {
			b.WriteRune(r)
			return 9
		}
	case '0', '1', '2', '3':
		if len(s) >= 3 {
			if v, err := strconv.ParseUint(s[:3], 8, 8); err == nil {
				b.WriteByte(byte(v))
				return 3
			}
		}
	}
	b.WriteByte('\\') // relaxed: an unknown escape stays as written
	b.WriteByte(c)
	return 1
}
