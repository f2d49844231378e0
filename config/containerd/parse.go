// Package containerd reads containerd's config.toml the way containerd
// does: strictly, with its imports resolved and merged by the rule of the
// containerd release that will read it. It also writes usernsctl's own
// drop-in file and the one-line edit that makes the main file import it:
// the operator's file is never re-encoded (go-toml drops comments).
package containerd

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// MaxSize bounds a config file. containerd configs are a few KiB; anything
// this large is not one, and must not cost the check its memory budget.
const MaxSize = 4 << 20

// File is one parsed config file: the main config.toml or an import.
type File struct {
	// Name is the path the file was read from, used in every message.
	Name string
	// Version is the top-level `version`; 0 when the file has none, which
	// containerd reads as version 1.
	Version int
	// Imports are the top-level `imports` entries as written.
	Imports []string
	// ImportedBy is the file whose imports named this one; "" for the main
	// file.
	ImportedBy string
	// Tree is the decoded document: nested map[string]any, []any, string,
	// int64, float64, bool and go-toml's date/time types.
	Tree map[string]any

	pos *posNode // where each key is set
}

// EffectiveVersion is Version with containerd's default applied: a file
// without `version` is version 1.
func (f *File) EffectiveVersion() int {
	if f.Version == 0 {
		return 1
	}
	return f.Version
}

// Where returns the line and column at which the key path is set in this
// file, e.g. Where("plugins", "io.containerd.snapshotter.v1.overlayfs",
// "slow_chown").
func (f *File) Where(path ...string) (Pos, bool) {
	n := f.pos.at(path)
	if n == nil || !n.set {
		return Pos{}, false
	}
	return n.pos, true
}

// Pos is a 1-based line and column (in bytes) in a file.
type Pos struct {
	Line, Column int
}

// Parse reads one config file strictly: TOML syntax and the types of the
// top-level keys containerd itself decodes (version, imports, root, state,
// plugins). name is the path used in messages.
func Parse(r io.Reader, name string) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxSize {
		return nil, &errs.Input{Pos: errs.Pos{File: name}, Msg: fmt.Sprintf("larger than %d MiB: not a containerd config", MaxSize>>20)}
	}
	return parseBytes(data, name)
}

func parseBytes(data []byte, name string) (*File, error) {
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, &errs.Input{Pos: errs.Pos{File: name, Line: row, Column: col}, Msg: plainTOML(strings.TrimPrefix(de.Error(), "toml: "))}
		}
		return nil, &errs.Input{Pos: errs.Pos{File: name}, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	if tree == nil {
		tree = map[string]any{}
	}
	f := &File{Name: name, Tree: tree}
	// The decoder above validated the document; this second pass only
	// records where keys are, which the decoder does not expose.
	if err := f.index(data); err != nil {
		return nil, err
	}
	if err := f.topLevel(); err != nil {
		return nil, err
	}
	return f, nil
}

// topLevel checks the types containerd's Config struct imposes on the keys
// usernsctl relies on; a mismatch stops containerd at start.
func (f *File) topLevel() error {
	bad := func(key, want string, got any) error {
		p, _ := f.Where(key)
		return &errs.Input{Pos: errs.Pos{File: f.Name, Line: p.Line, Column: p.Column}, Msg: fmt.Sprintf("%s must be %s, not %s", key, want, describe(got))}
	}
	if v, ok := f.Tree["version"]; ok {
		n, isInt := v.(int64)
		if !isInt {
			return bad("version", "an integer", v)
		}
		if n < 0 || n > 1000 {
			return bad("version", "a config version such as 2 or 3", v)
		}
		f.Version = int(n)
	}
	if v, ok := f.Tree["imports"]; ok {
		arr, isArr := v.([]any)
		if !isArr {
			return bad("imports", "an array of paths", v)
		}
		for _, e := range arr {
			s, isStr := e.(string)
			if !isStr {
				return bad("imports", "an array of strings", e)
			}
			f.Imports = append(f.Imports, s)
		}
	}
	for _, k := range []string{"root", "state"} {
		if v, ok := f.Tree[k]; ok {
			if _, isStr := v.(string); !isStr {
				return bad(k, "a string", v)
			}
		}
	}
	if v, ok := f.Tree["plugins"]; ok {
		if _, isMap := v.(map[string]any); !isMap {
			return bad("plugins", "a table", v)
		}
	}
	return nil
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// posNode mirrors the document's key tree with the position of each key.
type posNode struct {
	pos  Pos
	set  bool
	kids map[string]*posNode
}

func (n *posNode) at(path []string) *posNode {
	for _, k := range path {
		if n == nil {
			return nil
		}
		n = n.kids[k]
	}
	return n
}

func (n *posNode) child(k string) *posNode {
	if n.kids == nil {
		n.kids = map[string]*posNode{}
	}
	c := n.kids[k]
	if c == nil {
		c = &posNode{}
		n.kids[k] = c
	}
	return c
}

func (n *posNode) clone() *posNode {
	if n == nil {
		return nil
	}
	c := &posNode{pos: n.pos, set: n.set}
	if len(n.kids) > 0 {
		c.kids = make(map[string]*posNode, len(n.kids))
		for k, v := range n.kids {
			c.kids[k] = v.clone()
		}
	}
	return c
}

// lines maps byte offsets to line and column.
type lines []int // offset of the first byte of each line

func newLines(data []byte) lines {
	ls := lines{0}
	for i, b := range data {
		if b == '\n' {
			ls = append(ls, i+1)
		}
	}
	return ls
}

func (ls lines) pos(offset int) Pos {
	i := sort.Search(len(ls), func(i int) bool { return ls[i] > offset }) - 1
	return Pos{Line: i + 1, Column: offset - ls[i] + 1}
}

// index records where every key and table header is, using go-toml's
// low-level parser (the decoder does not keep positions).
func (f *File) index(data []byte) error {
	f.pos = &posNode{}
	ls := newLines(data)
	var p unstable.Parser
	p.Reset(data)
	var table []string
	mark := func(path []string, n *unstable.Node) {
		node := f.pos
		for _, k := range path {
			node = node.child(k)
		}
		if !node.set {
			node.pos, node.set = ls.pos(int(n.Raw.Offset)), true
		}
	}
	var keyval func(prefix []string, kv *unstable.Node)
	keyval = func(prefix []string, kv *unstable.Node) {
		path, first := keyPath(prefix, kv)
		if first == nil {
			return
		}
		mark(path, first)
		if v := kv.Value(); v.Kind == unstable.InlineTable {
			it := v.Children()
			for it.Next() {
				if c := it.Node(); c.Kind == unstable.KeyValue {
					keyval(path, c)
				}
			}
		}
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path, first := keyPath(nil, e)
			if first != nil {
				mark(path, first)
			}
			table = path
		case unstable.KeyValue:
			keyval(table, e)
		}
	}
	if err := p.Error(); err != nil {
		// Unreachable after a successful decode, but never trust that.
		return &errs.Input{Pos: errs.Pos{File: f.Name}, Msg: err.Error()}
	}
	return nil
}

// keyPath returns prefix plus the node's (dotted) key, and the first key
// node for its position.
func keyPath(prefix []string, n *unstable.Node) ([]string, *unstable.Node) {
	path := append([]string(nil), prefix...)
	var first *unstable.Node
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if first == nil {
			first = k
		}
		path = append(path, string(k.Data))
	}
	return path, first
}

// strconvErr is the Go parser's wording inside go-toml's messages.
var strconvErr = regexp.MustCompile(`strconv\.Parse\w+: parsing "([^"]*)": (value out of range|invalid syntax)`)

// plainTOML words go-toml's number errors without Go's internals: "unable
// to parse float: strconv.ParseFloat: parsing \"1e400\": value out of
// range" becomes "unable to parse float: 1e400 is out of range".
func plainTOML(msg string) string {
	return strconvErr.ReplaceAllStringFunc(msg, func(m string) string {
		sub := strconvErr.FindStringSubmatch(m)
		if sub[2] == "value out of range" {
			return sub[1] + " is out of range"
		}
		return sub[1] + " is not a number"
	})
}
