package containerd

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// DropInPath is usernsctl's own drop-in. The name sorts after the usual
// NN-name.toml files, so a conf.d/*.toml glob loads it last.
const DropInPath = "/etc/containerd/conf.d/99-usernsctl.toml"

// DropIn is the content of usernsctl's drop-in file.
type DropIn struct {
	// Version must be the main file's: containerd (2.3+) refuses a drop-in
	// newer than the main file, and a version 2 file under a version 3
	// loader is migrated on every start.
	Version int
	// SlowChown sets slow_chown = true for the overlayfs snapshotter
	// (containerd 2.x): user-namespaced pods work without overlayfs idmap
	// support, at the cost of a chowned copy of every image per pod.
	SlowChown bool
	// Why is written as the comment above slow_chown: what decided it
	// (the probe's finding, or --slow-chown on). Empty: a generic one.
	Why string
}

// Render returns the drop-in's bytes, deterministic so that a second apply
// can compare them with what is on disk.
func (d DropIn) Render() ([]byte, error) {
	if d.Version < 2 {
		return nil, fmt.Errorf("containerd drop-in: config version %d: usernsctl writes version 2 or later only (version 1 uses plugin IDs and is not read by containerd 2.x)", d.Version)
	}
	var b bytes.Buffer
	b.WriteString("# Managed by usernsctl: written by `usernsctl apply --target containerd`,\n")
	b.WriteString("# removed by `usernsctl revert`. Do not edit; containerd reads it through the\n")
	b.WriteString("# main config's `imports`. Values here override the main config.\n")
	fmt.Fprintf(&b, "version = %d\n", d.Version)
	if d.SlowChown {
		// containerd 2.x writes single-quoted table names, 1.x double quotes.
		q := `"`
		if d.Version >= 3 {
			q = "'"
		}
		fmt.Fprintf(&b, "\n[plugins.%s%s%s]\n", q, PluginOverlayfs, q)
		why := strings.Join(strings.Fields(d.Why), " ") // one comment line
		if why == "" {
			why = "no overlayfs idmap support on this host"
		}
		fmt.Fprintf(&b, "  # %s: chown a copy of each image per pod.\n", why)
		b.WriteString("  slow_chown = true\n")
	}
	return b.Bytes(), nil
}

// NewMain is a main config for a host that has none: containerd reads
// drop-ins only through a main file's imports. Everything else keeps
// containerd's defaults.
func NewMain(version int, imports ...string) ([]byte, error) {
	if version < 2 {
		return nil, fmt.Errorf("containerd config version %d: usernsctl writes version 2 or later only", version)
	}
	var b bytes.Buffer
	b.WriteString("# Created by usernsctl so that containerd reads its drop-in files (containerd\n")
	b.WriteString("# ignores drop-ins when there is no main config). Everything else is default.\n")
	fmt.Fprintf(&b, "version = %d\n", version)
	if len(imports) > 0 {
		b.WriteString("imports = [")
		for i, p := range imports {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(p, version >= 3))
		}
		b.WriteString("]\n")
	}
	return b.Bytes(), nil
}

// ErrNoVersion is a main file without `version`: a version 1 file, which
// usernsctl does not edit (containerd 2.x does not read it at all).
var ErrNoVersion = errors.New("the main config has no `version` line (a version 1 config): migrate it first (`containerd config migrate` on containerd 2.x), usernsctl does not edit version 1 files")

// Covers reports whether the main file's imports already load importPath:
// an entry naming it, or a glob matching it, resolved the way containerd
// resolves them (relative to mainPath's directory). A relative glob does
// not count: containerd before 1.6.29/1.7.16 expands it against its working
// directory, so adding the explicit path is the safe choice (containerd
// loads a file once however many entries name it).
func Covers(main *File, mainPath, importPath string) bool {
	for _, e := range main.Imports {
		p := ResolveImport(mainPath, e)
		if strings.Contains(p, "*") {
			if !path.IsAbs(e) {
				continue
			}
			if ok, err := path.Match(p, importPath); err == nil && ok {
				return true
			}
			continue
		}
		if p == path.Clean(importPath) {
			return true
		}
	}
	return false
}

// AddImport returns main with importPath added to its top-level `imports`,
// and whether anything changed. It inserts bytes and never removes or
// re-encodes any: comments, order and formatting stay as they were. An
// existing imports array gets the path appended after its last element; a
// file without one gets an `imports = [...]` line right after its `version`
// line. Nothing changes when the imports already cover importPath (see
// Covers). The result is parsed again and must hold exactly the old keys
// plus the new import, or AddImport fails.
func AddImport(main []byte, mainPath, importPath string) ([]byte, bool, error) {
	if !path.IsAbs(importPath) {
		return nil, false, fmt.Errorf("import %q: want an absolute path", importPath)
	}
	if strings.ContainsAny(importPath, "*?[\\\n\r\x00") {
		return nil, false, fmt.Errorf("import %q: refusing a path with glob, escape or control characters", importPath)
	}
	before, err := parseBytes(main, mainPath)
	if err != nil {
		return nil, false, err
	}
	if Covers(before, mainPath, importPath) {
		return main, false, nil
	}
	if before.Version == 0 {
		return nil, false, fmt.Errorf("%s: %w", mainPath, ErrNoVersion)
	}
	loc, err := locate(main)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", mainPath, err)
	}
	var out []byte
	if loc.imports != nil {
		out = appendToArray(main, loc.imports, importPath)
	} else {
		out = insertAfterLine(main, loc.versionEnd, "imports = ["+quote(importPath, before.Version >= 3)+"]")
	}
	after, err := parseBytes(out, mainPath)
	if err != nil {
		return nil, false, fmt.Errorf("%s: internal error: the edited file does not parse (%v); nothing written", mainPath, err)
	}
	if err := sameExceptImport(before, after, importPath); err != nil {
		return nil, false, fmt.Errorf("%s: internal error: %v; nothing written", mainPath, err)
	}
	return out, true, nil
}

func sameExceptImport(before, after *File, importPath string) error {
	want := append(append([]string(nil), before.Imports...), importPath)
	if !reflect.DeepEqual(after.Imports, want) {
		return fmt.Errorf("imports became %q, want %q", after.Imports, want)
	}
	a, b := shallowCopy(before.Tree), shallowCopy(after.Tree)
	delete(a, "imports")
	delete(b, "imports")
	if !reflect.DeepEqual(a, b) {
		return errors.New("keys other than imports changed")
	}
	return nil
}

// location is where the edit goes.
type location struct {
	versionEnd int // offset just past the version value
	imports    *arrayLoc
}

type arrayLoc struct {
	open  int      // offset of '['
	elems [][2]int // [start, end) of each element
}

// locate finds the top-level version and imports key-values. They are
// top-level only before the first table header.
func locate(data []byte) (location, error) {
	var p unstable.Parser
	p.Reset(data)
	loc := location{versionEnd: -1}
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind == unstable.Table || e.Kind == unstable.ArrayTable {
			break
		}
		if e.Kind != unstable.KeyValue {
			continue
		}
		path, first := keyPath(nil, e)
		if len(path) != 1 || first == nil {
			continue
		}
		end := int(e.Raw.Offset + e.Raw.Length)
		switch path[0] {
		case "version":
			loc.versionEnd = end
		case "imports":
			open := skipToValue(data, int(first.Raw.Offset+first.Raw.Length))
			if open < 0 || data[open] != '[' {
				return loc, errors.New("imports is not an array")
			}
			a := &arrayLoc{open: open}
			it := e.Value().Children()
			for it.Next() {
				n := it.Node()
				a.elems = append(a.elems, [2]int{int(n.Raw.Offset), int(n.Raw.Offset + n.Raw.Length)})
			}
			loc.imports = a
		}
	}
	if err := p.Error(); err != nil {
		return loc, err
	}
	if loc.versionEnd < 0 {
		return loc, ErrNoVersion
	}
	return loc, nil
}

// skipToValue returns the offset of the value after a key: past blanks,
// '=' and blanks.
func skipToValue(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	if i >= len(data) || data[i] != '=' {
		return -1
	}
	i++
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	if i >= len(data) {
		return -1
	}
	return i
}

func appendToArray(data []byte, a *arrayLoc, importPath string) []byte {
	if len(a.elems) == 0 {
		lit := quote(importPath, false)
		return splice(data, a.open+1, lit)
	}
	last := a.elems[len(a.elems)-1]
	lit := quote(importPath, data[last[0]] == '\'')
	// After the last element: an optional comma, then blanks and an
	// optional comment up to the end of its line, or the closing bracket.
	i := last[1]
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	comma := i < len(data) && data[i] == ','
	if comma {
		i++
	}
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	if i < len(data) && data[i] == '#' {
		for i < len(data) && data[i] != '\n' && data[i] != '\r' {
			i++
		}
	}
	if i < len(data) && (data[i] == '\n' || data[i] == '\r') {
		// One element per line: add ours on a line of its own with the
		// same indentation, keeping the trailing-comma style.
		nl := "\n"
		if data[i] == '\r' {
			nl = "\r\n"
		}
		line := nl + indentOf(data, last[0]) + lit
		if comma {
			return splice(data, i, line+",")
		}
		return splice(splice(data, i, line), last[1], ",")
	}
	return splice(data, last[1], ", "+lit)
}

// insertAfterLine inserts text as a new line after the line holding offset.
func insertAfterLine(data []byte, offset int, text string) []byte {
	i := bytes.IndexByte(data[offset:], '\n')
	if i < 0 {
		return append(append(append([]byte(nil), data...), '\n'), text+"\n"...)
	}
	at := offset + i + 1
	nl := "\n"
	if at >= 2 && data[at-2] == '\r' {
		nl = "\r\n"
	}
	return splice(data, at, text+nl)
}

func indentOf(data []byte, offset int) string {
	start := bytes.LastIndexByte(data[:offset], '\n') + 1
	end := start
	for end < offset && (data[end] == ' ' || data[end] == '\t') {
		end++
	}
	return string(data[start:end])
}

func splice(data []byte, at int, s string) []byte {
	out := make([]byte, 0, len(data)+len(s))
	out = append(out, data[:at]...)
	out = append(out, s...)
	return append(out, data[at:]...)
}

// quote renders a path as a TOML string: a literal string when asked for
// and possible, else a basic string.
func quote(s string, literal bool) string {
	if literal && !strings.ContainsAny(s, "'\n\r") {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
