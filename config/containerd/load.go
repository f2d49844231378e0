package containerd

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// FS is how Load reads the main file and its imports: host paths, so that
// tests and snapshots resolve them under a root (internal/host.Host
// satisfies it).
type FS interface {
	ReadFile(name string) ([]byte, error)
	// Glob returns the host paths matching pattern, sorted.
	Glob(pattern string) ([]string, error)
}

// Rule is how a containerd release merges an imported file into what it
// has loaded so far.
type Rule int

const (
	// ReplacePlugins is containerd 1.x: an imported [plugins."X"] table
	// replaces the whole table loaded before it.
	ReplacePlugins Rule = iota + 1
	// MergeKeys is containerd 2.x: imported plugin tables are merged key by
	// key into the tables loaded before them.
	MergeKeys
)

func (r Rule) String() string {
	switch r {
	case ReplacePlugins:
		return "containerd 1.x (an imported plugin table replaces the whole table)"
	case MergeKeys:
		return "containerd 2.x (imported plugin tables merge key by key)"
	}
	return "unknown merge rule"
}

// Options are what a containerd release does differently when loading.
type Options struct {
	Rule Rule
	// CWDGlobs: containerd before 1.6.29 and 1.7.16 expands a relative glob
	// import against its working directory (/ under systemd) instead of the
	// importing file's directory; plain relative paths were always relative
	// to the importing file.
	CWDGlobs bool
}

// OptionsFor returns the loading behaviour of containerd major.minor.patch.
func OptionsFor(major, minor, patch int) Options {
	o := Options{Rule: RuleFor(major)}
	switch {
	case major == 1 && minor < 6:
		o.CWDGlobs = true
	case major == 1 && minor == 6:
		o.CWDGlobs = patch < 29
	case major == 1 && minor == 7:
		o.CWDGlobs = patch < 16
	}
	return o
}

// maxFiles bounds the import graph: a glob over a huge directory must not
// make a check read thousands of files.
const maxFiles = 256

// Config is a main config file with its imports resolved and merged: what
// containerd will run with.
type Config struct {
	Rule Rule
	// Files in load order: the main file first, then imports breadth-first,
	// as containerd loads them.
	Files []*File
	// Tree is the effective merged config, plugin names normalised to
	// their full URIs and, under MergeKeys, CRI keys of version 2 files
	// moved to where 2.x reads them.
	Tree map[string]any
	// Dropped lists plugin keys an import threw away: under ReplacePlugins
	// (1.x) an imported plugin table replaces the whole table, so keys set
	// before and absent from the import are lost.
	Dropped []Dropped

	origin *originNode
}

// Dropped is one plugin table replaced by an import under ReplacePlugins.
type Dropped struct {
	Plugin string
	// Keys were set by earlier files and are not in By's table.
	Keys []string
	// From are the files that had set them.
	From []string
	By   string
}

// Main is the main config file.
func (c *Config) Main() *File {
	if c == nil || len(c.Files) == 0 {
		return nil
	}
	return c.Files[0]
}

// ImportError is an import containerd cannot load; containerd then refuses
// to start.
type ImportError struct {
	File       string // the imported file
	ImportedBy string
	Err        error
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("%s (imported by %s): %v", e.File, e.ImportedBy, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

// Load reads the main config at mainPath and every file it imports,
// merging them the way opts says. A missing main file returns the read error
// (errors.Is(err, fs.ErrNotExist)): containerd then runs with its defaults
// and reads no drop-ins at all.
func Load(fsys FS, mainPath string, opts Options) (*Config, error) {
	rule := opts.Rule
	c := &Config{Rule: rule, Tree: map[string]any{}, origin: &originNode{}}
	loaded := map[string]bool{}
	type item struct{ path, by string }
	pending := []item{{path: mainPath}}
	for len(pending) > 0 {
		it := pending[0]
		pending = pending[1:]
		// containerd's own cycle guard: a path already loaded is skipped.
		if loaded[it.path] {
			continue
		}
		if len(c.Files) >= maxFiles {
			return nil, fmt.Errorf("%s: more than %d config files through imports", mainPath, maxFiles)
		}
		data, err := fsys.ReadFile(it.path)
		if err != nil {
			if it.by == "" {
				return nil, err
			}
			return nil, &ImportError{File: it.path, ImportedBy: it.by, Err: err}
		}
		f, err := Parse(bytes.NewReader(data), it.path)
		if err != nil {
			if it.by == "" {
				return nil, err
			}
			return nil, &ImportError{File: it.path, ImportedBy: it.by, Err: err}
		}
		f.ImportedBy = it.by
		c.Files = append(c.Files, f)
		c.merge(migrate(f, rule))
		loaded[it.path] = true
		for _, entry := range f.Imports {
			paths, err := resolveImport(fsys, it.path, entry, opts.CWDGlobs)
			if err != nil {
				return nil, &errs.Input{Pos: errs.Pos{File: it.path}, Msg: fmt.Sprintf("imports entry %q: %v", entry, err)}
			}
			for _, p := range paths {
				pending = append(pending, item{path: p, by: it.path})
			}
		}
	}
	return c, nil
}

// resolveImport applies containerd's rules to one imports entry: cleaned,
// relative to the importing file's directory, expanded as a glob only when
// it contains "*" (a glob matching nothing is fine; a missing plain path
// is an error at load time).
func resolveImport(fsys FS, parent, entry string, cwdGlobs bool) ([]string, error) {
	if cwdGlobs && strings.Contains(entry, "*") && !path.IsAbs(entry) {
		return fsys.Glob(path.Join("/", entry))
	}
	p := ResolveImport(parent, entry)
	if !strings.Contains(p, "*") {
		return []string{p}, nil
	}
	return fsys.Glob(p)
}

// ResolveImport makes an imports entry absolute the way containerd does.
func ResolveImport(parent, entry string) string {
	p := path.Clean(entry)
	if !path.IsAbs(p) {
		p = path.Join(path.Dir(parent), p)
	}
	return p
}

// v1Plugins maps version 1 plugin IDs to the URIs later versions use; only
// the ones usernsctl reads (an unknown short name keeps its ID).
var v1Plugins = map[string]string{
	"cri":       "io.containerd.grpc.v1.cri",
	"overlayfs": "io.containerd.snapshotter.v1.overlayfs",
	"native":    "io.containerd.snapshotter.v1.native",
	"btrfs":     "io.containerd.snapshotter.v1.btrfs",
	"zfs":       "io.containerd.snapshotter.v1.zfs",
	"devmapper": "io.containerd.snapshotter.v1.devmapper",
}

// migrate returns the file as the merge sees it. Version 1 files name
// plugins by ID ("cri"); they are renamed to URIs so that one set of
// accessors serves every version. Under containerd 2.x, a file older than
// version 3 has its CRI settings migrated before the merge (2.1+ does this
// per file): the image snapshotter moves from the CRI plugin's
// `containerd` table to io.containerd.cri.v1.images, the rest of that table
// to io.containerd.cri.v1.runtime.
func migrate(f *File, rule Rule) *File {
	plugins, _ := f.Tree["plugins"].(map[string]any)
	if plugins == nil {
		return f
	}
	out := &File{Name: f.Name, Version: f.Version, Imports: f.Imports, ImportedBy: f.ImportedBy,
		Tree: shallowCopy(f.Tree), pos: f.pos.clone()}
	np := shallowCopy(plugins)
	out.Tree["plugins"] = np
	ppos := out.pos.at([]string{"plugins"})
	if f.EffectiveVersion() < 2 {
		for id, uri := range v1Plugins {
			if v, ok := np[id]; ok {
				if _, taken := np[uri]; !taken {
					np[uri] = v
					delete(np, id)
					if ppos != nil && ppos.kids[id] != nil {
						ppos.kids[uri] = ppos.kids[id]
						delete(ppos.kids, id)
					}
				}
			}
		}
	}
	if rule != MergeKeys || f.EffectiveVersion() >= 3 {
		return out
	}
	cri, _ := np[PluginCRIv2].(map[string]any)
	ctrd, _ := cri["containerd"].(map[string]any)
	if ctrd == nil {
		return out
	}
	images := shallowCopy(asMap(np[PluginCRIImages]))
	runtime := shallowCopy(asMap(np[PluginCRIRuntime]))
	rctrd := shallowCopy(asMap(runtime["containerd"]))
	from := []string{"plugins", PluginCRIv2, "containerd"}
	for k, v := range ctrd {
		switch k {
		case "snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers":
			images[k] = v
			movePos(out.pos, append(from, k), []string{"plugins", PluginCRIImages, k}, true)
		default:
			if _, ok := rctrd[k]; !ok {
				rctrd[k] = v
				movePos(out.pos, append(from, k), []string{"plugins", PluginCRIRuntime, "containerd", k}, false)
			}
		}
	}
	runtime["containerd"] = rctrd
	np[PluginCRIImages] = images
	np[PluginCRIRuntime] = runtime
	return out
}

func movePos(root *posNode, from, to []string, overwrite bool) {
	src := root.at(from)
	if src == nil {
		return
	}
	n := root
	for _, k := range to[:len(to)-1] {
		n = n.child(k)
	}
	last := to[len(to)-1]
	if _, exists := n.kids[last]; exists && !overwrite {
		return
	}
	if n.kids == nil {
		n.kids = map[string]*posNode{}
	}
	n.kids[last] = src.clone()
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func shallowCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// originNode records which file set each key of the effective config.
type originNode struct {
	origin Origin
	kids   map[string]*originNode
}

// Origin is where an effective value was set.
type Origin struct {
	File string
	Pos
}

// IsZero reports a default value that no file set.
func (o Origin) IsZero() bool { return o.File == "" }

func (o Origin) String() string {
	switch {
	case o.File == "":
		return "default"
	case o.Line == 0:
		return o.File
	}
	return fmt.Sprintf("%s line %d", o.File, o.Line)
}

func fromPos(file string, n *posNode) *originNode {
	if n == nil {
		return &originNode{}
	}
	o := &originNode{}
	if n.set {
		o.origin = Origin{File: file, Pos: n.pos}
	}
	if len(n.kids) > 0 {
		o.kids = make(map[string]*originNode, len(n.kids))
		for k, c := range n.kids {
			o.kids[k] = fromPos(file, c)
		}
	}
	return o
}

// merge folds one file into the effective config following containerd's
// merge (mergo with override): top-level scalars and the fields of
// top-level tables are replaced by non-empty values; top-level arrays are
// appended (1.x) or unioned (2.x); timeouts, proxy_plugins and
// stream_processors entries are replaced whole; plugin tables are replaced
// whole (1.x) or merged recursively with the new value winning at every
// leaf, arrays included (2.x).
func (c *Config) merge(f *File) {
	for k, v := range f.Tree {
		switch k {
		case "plugins", "timeouts", "proxy_plugins", "stream_processors":
			src, ok := v.(map[string]any)
			if !ok {
				c.set(f, []string{k}, v)
				continue
			}
			if _, ok := c.Tree[k].(map[string]any); !ok {
				c.set(f, []string{k}, map[string]any{})
			}
			for name, sv := range src {
				p := []string{k, name}
				switch {
				case k == "plugins" && c.Rule == MergeKeys:
					c.mergeValue(f, p, sv)
				case k == "plugins":
					c.noteDropped(f, name, sv)
					c.set(f, p, sv)
				default:
					c.set(f, p, sv)
				}
			}
		default:
			switch tv := v.(type) {
			case []any:
				c.appendArray(f, k, tv)
			case map[string]any:
				if _, ok := c.Tree[k].(map[string]any); !ok {
					c.set(f, []string{k}, map[string]any{})
				}
				for fk, fv := range tv {
					if !isZero(fv) {
						c.set(f, []string{k, fk}, fv)
					}
				}
			default:
				if !isZero(v) {
					c.set(f, []string{k}, v)
				}
			}
		}
	}
}

// noteDropped records the keys of plugin table name that replacing it
// with v (from file f) throws away.
func (c *Config) noteDropped(f *File, name string, v any) {
	old, _ := c.lookup([]string{"plugins", name}).(map[string]any)
	repl, _ := v.(map[string]any)
	d := Dropped{Plugin: name, By: f.Name}
	from := map[string]bool{}
	for k := range old {
		if _, kept := repl[k]; kept {
			continue
		}
		d.Keys = append(d.Keys, k)
		if n := c.originAt([]string{"plugins", name, k}); n.origin.File != "" && !from[n.origin.File] {
			from[n.origin.File] = true
			d.From = append(d.From, n.origin.File)
		}
	}
	if len(d.Keys) > 0 {
		sort.Strings(d.Keys)
		sort.Strings(d.From)
		c.Dropped = append(c.Dropped, d)
	}
}

func (c *Config) appendArray(f *File, k string, src []any) {
	dst, _ := c.Tree[k].([]any)
	out := append([]any(nil), dst...)
	for _, v := range src {
		if c.Rule == MergeKeys && containsValue(out, v) {
			continue
		}
		out = append(out, v)
	}
	c.Tree[k] = out
	if p, ok := f.Where(k); ok {
		c.originAt([]string{k}).origin = Origin{File: f.Name, Pos: p}
	}
}

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if fmt.Sprint(x) == fmt.Sprint(v) {
			return true
		}
	}
	return false
}

func (c *Config) mergeValue(f *File, p []string, v any) {
	if sm, ok := v.(map[string]any); ok {
		if _, isMap := c.lookup(p).(map[string]any); isMap {
			for k, sv := range sm {
				c.mergeValue(f, append(append([]string(nil), p...), k), sv)
			}
			return
		}
	}
	c.set(f, p, v)
}

// set replaces the value at p (creating tables on the way) and its origins.
func (c *Config) set(f *File, p []string, v any) {
	m := c.Tree
	for _, k := range p[:len(p)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[p[len(p)-1]] = deepCopy(v)
	parent := c.originAt(p[:len(p)-1])
	if parent.kids == nil {
		parent.kids = map[string]*originNode{}
	}
	parent.kids[p[len(p)-1]] = fromPos(f.Name, f.pos.at(p))
}

func (c *Config) originAt(p []string) *originNode {
	n := c.origin
	for _, k := range p {
		if n.kids == nil {
			n.kids = map[string]*originNode{}
		}
		next := n.kids[k]
		if next == nil {
			next = &originNode{}
			n.kids[k] = next
		}
		n = next
	}
	return n
}

func (c *Config) lookup(p []string) any {
	var cur any = c.Tree
	for _, k := range p {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur, ok = m[k]
		if !ok {
			return nil
		}
	}
	return cur
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// isZero is mergo's "empty" for the values a TOML document can hold.
func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case int64:
		return x == 0
	case float64:
		return x == 0
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
