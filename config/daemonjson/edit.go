package daemonjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Create returns a new daemon.json holding one string member:
// {\n  "key": "value"\n}\n.
func Create(key, value string) []byte {
	return []byte("{\n  " + quote(key) + ": " + quote(value) + "\n}\n")
}

// Set returns f's bytes with the top-level key set to the string value.
// Every other byte is kept: an existing value is replaced in place; a new
// member goes after the last one, with the same indentation and separators.
// An empty file becomes Create(key, value). A key given more than once is
// refused: the operator must decide which one is meant.
func (f *File) Set(key, value string) ([]byte, error) {
	out, err := f.setRaw(key, quote(value))
	if err != nil {
		return nil, err
	}
	return f.encode(out), nil
}

func (f *File) setRaw(key, raw string) ([]byte, error) {
	if f.Empty {
		return []byte(strings.ReplaceAll(fmt.Sprintf("{\n  %s: %s\n}\n", quote(key), raw), "\n", f.nl)), nil
	}
	idx, err := f.only(key)
	if err != nil {
		return nil, err
	}
	src := f.Src
	if idx >= 0 {
		m := f.Members[idx]
		return splice(src, m.valStart, m.valEnd, raw), nil
	}
	if len(f.Members) == 0 {
		// {} or { } or {\n}: one member, indented by two spaces, with the
		// closing brace on its own line under the opening one.
		ind := indentOf(src, f.open)
		text := f.nl + ind + "  " + quote(key) + ": " + raw + f.nl + ind
		return splice(src, f.open+1, f.close, text), nil
	}
	last := f.Members[len(f.Members)-1]
	lead := string(src[last.leadStart:last.keyStart])
	sep := string(src[last.keyEnd:last.valStart])
	if !strings.ContainsAny(lead, "\n") && len(f.Members) == 1 && lead == "" && strings.Contains(sep, " ") {
		lead = " " // {"a": 1} becomes {"a": 1, "key": "value"}
	}
	text := "," + lead + quote(key) + sep + raw
	return splice(src, last.valEnd, last.valEnd, text), nil
}

// Remove returns f's bytes without the top-level key, keeping every other
// byte; removing an absent key returns the bytes unchanged.
func (f *File) Remove(key string) ([]byte, error) {
	out, err := f.remove(key)
	if err != nil {
		return nil, err
	}
	return f.encode(out), nil
}

func (f *File) remove(key string) ([]byte, error) {
	if f.Empty {
		return bytes.Clone(f.Src), nil
	}
	idx, err := f.only(key)
	if err != nil {
		return nil, err
	}
	src := f.Src
	switch {
	case idx < 0:
		return bytes.Clone(src), nil
	case len(f.Members) == 1:
		return splice(src, f.open+1, f.close, ""), nil
	case idx == len(f.Members)-1:
		// Drop ", <lead>"key": value" after the previous value.
		return splice(src, f.Members[idx-1].valEnd, f.Members[idx].valEnd, ""), nil
	}
	// Drop "<lead>"key": value<ws>," up to the next member's lead.
	return splice(src, f.Members[idx].leadStart, f.Members[idx+1].leadStart, ""), nil
}

// only returns the index of the single top-level member named key, -1 when
// there is none, and an error when there are several.
func (f *File) only(key string) (int, error) {
	idx := -1
	var lines []string
	for i, m := range f.Members {
		if m.Key == key {
			idx = i
			lines = append(lines, fmt.Sprint(m.Line))
		}
	}
	if len(lines) > 1 {
		return -1, fmt.Errorf("%s: %q is given %d times (lines %s); dockerd uses the last one: delete the others, then run again",
			f.Name, key, len(lines), strings.Join(lines, ", "))
	}
	return idx, nil
}

func splice(src []byte, from, to int, text string) []byte {
	out := make([]byte, 0, len(src)-(to-from)+len(text))
	out = append(out, src[:from]...)
	out = append(out, text...)
	return append(out, src[to:]...)
}

// indentOf returns the whitespace that starts the line holding offset off.
func indentOf(src []byte, off int) string {
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	end := start
	for end < off && (src[end] == ' ' || src[end] == '\t') {
		end++
	}
	return string(src[start:end])
}

// quote encodes s as a JSON string without HTML escaping, as an operator
// would write it.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
