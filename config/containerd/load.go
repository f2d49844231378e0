package containerd

import (
	"bytes"
	"fmt"
	"path"
	"slices"
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
// The releases that decide them are in package rules; checks/facts maps an
// installed containerd to its Options.
type Options struct {
	Rule Rule
	// CWDGlobs: containerd before 1.6.29 and 1.7.16 expands a relative glob
	// import against its working directory (/ under systemd) instead of the
	// importing file's directory; plain relative paths were always relative
	// to the importing file.
	CWDGlobs bool
	// Migration is how a 2.x release brings files older than its own
	// version to it.
	Migration Migration
	// Version is the config version the release itself carries (its
	// default config's): the one files are migrated to.
	Version int
}

// Migration is how containerd 2.x migrates older files.
type Migration int

const (
	// NoMigration is containerd 1.x: files are read as they are.
	NoMigration Migration = iota
	// MigrateMerged is containerd 2.0–2.2: a file without `version` has its
	// plugin IDs renamed and then counts as the version merged so far (3
	// unless an earlier file set another); the CRI settings are migrated
	// once, on the merged tree, and only when the merged version is below 3.
	MigrateMerged
	// MigratePerFile is containerd 2.3+: every file older than the release's
	// version is migrated on its own, step by step, before the merge.
	MigratePerFile
)

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
	// their full URIs and, under containerd 2.x, the CRI settings of older
	// files migrated where 2.x reads them, as containerd migrates them.
	Tree map[string]any
	// Version is the version containerd validates the merged config
	// against: the last file's with a `version` line (1 when none; under
	// MigrateMerged a file without one counts as the version merged so far,
	// under MigratePerFile every older file counts as the release's).
	Version int
	// VersionFrom is the file that decided Version ("" when none did).
	VersionFrom string
	// Dropped lists plugin keys an import threw away: under ReplacePlugins
	// (1.x) an imported plugin table replaces the whole table, so keys set
	// before and absent from the import are lost.
	Dropped []Dropped
	// Unread are settings containerd 2.x does not read because of how it
	// migrates (or does not migrate) the file that has them.
	Unread []Unread

	origin *originNode
}

// Unread is a group of settings of one file that containerd 2.x ignores.
type Unread struct {
	File string
	// Version is the file's own (1 for a file without `version`).
	Version int
	// Keys are the settings, as dotted paths under the plugin table,
	// e.g. "containerd.snapshotter"; Line is where the first is set.
	Plugin string
	Keys   []string
	Line   int
	Why    UnreadWhy
	// By is the file whose version decided it (MixedVersions).
	By string
}

// UnreadWhy says why containerd ignores settings.
type UnreadWhy int

const (
	// NoRuntimesTable: a version 1/2 CRI `containerd` table's snapshotter
	// (and disable_snapshot_annotations, discard_unpacked_layers) is
	// migrated to the images plugin only when that table also has
	// `runtimes` (containerd plugins/cri/images/plugin.go migrateConfig).
	NoRuntimesTable UnreadWhy = iota + 1
	// Version1Dropped: containerd 2.0–2.2 read a file without `version` as
	// version 1 only to rename its plugins: its CRI settings, under the
	// CRI gRPC plugin, are never migrated.
	Version1Dropped
	// MixedVersions: containerd 2.0–2.2 migrate the CRI settings of
	// version 2 files only when the merged version is below 3, and a
	// version 3 file loaded later made it 3.
	MixedVersions
	// NotMigrated: a file of the release's own version that writes CRI
	// settings the version 2 way (under io.containerd.grpc.v1.cri).
	NotMigrated
)

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
	// cur is the version of what is merged so far: containerd's default
	// config carries the release's own (1.x: 1), and a file's non-zero
	// version overrides it in the merge (mergo).
	cur := opts.Version
	if rule == ReplacePlugins || cur == 0 {
		cur = 1
	}
	migrated := map[string]bool{} // files whose CRI settings a migration read
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
		g := renameV1(f)
		fv := f.Version
		switch opts.Migration {
		case MigrateMerged:
			if fv < 2 {
				fv = cur
			}
		case MigratePerFile:
			if fv < opts.Version {
				if f.EffectiveVersion() < 3 {
					g = migrateFile(c, g)
					migrated[f.Name] = true
				}
				fv = opts.Version
			}
		}
		if fv != 0 {
			cur = fv
		}
		if f.Version != 0 {
			c.VersionFrom = f.Name
		}
		c.merge(g)
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
	c.Version = cur
	if opts.Migration == MigrateMerged && cur < 3 {
		// server.New: the plugins' config migrations run once, on the
		// merged tree, when its version is below 3.
		migrateMergedTree(c)
		for _, f := range c.Files {
			migrated[f.Name] = true
		}
	}
	if rule == MergeKeys {
		c.noteUnread(migrated)
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

// v1Plugins maps version 1 plugin IDs to their URIs (containerd's
// v1MigratePluginName corePlugins; an unknown short name keeps its ID).
var v1Plugins = map[string]string{
	"cri":       "io.containerd.grpc.v1.cri",
	"cgroups":   "io.containerd.monitor.v1.cgroups",
	"linux":     "io.containerd.runtime.v1.linux",
	"scheduler": "io.containerd.gc.v1.scheduler",
	"bolt":      "io.containerd.metadata.v1.bolt",
	"task":      "io.containerd.runtime.v2.task",
	"opt":       "io.containerd.internal.v1.opt",
	"restart":   "io.containerd.internal.v1.restart",
	"tracing":   "io.containerd.internal.v1.tracing",
	"otlp":      "io.containerd.tracing.processor.v1.otlp",
	"aufs":      "io.containerd.snapshotter.v1.aufs",
	"btrfs":     "io.containerd.snapshotter.v1.btrfs",
	"devmapper": "io.containerd.snapshotter.v1.devmapper",
	"native":    "io.containerd.snapshotter.v1.native",
	"overlayfs": "io.containerd.snapshotter.v1.overlayfs",
	"zfs":       "io.containerd.snapshotter.v1.zfs",
}

// V1PluginURI is the URI a version 1 plugin ID stands for ("cri" is
// io.containerd.grpc.v1.cri); a name with a dot is returned as it is.
func V1PluginURI(id string) string {
	if strings.Contains(id, ".") {
		return id
	}
	if uri, ok := v1Plugins[id]; ok {
		return uri
	}
	if strings.HasSuffix(id, "-service") {
		return "io.containerd.service.v1." + id
	}
	return id
}

// renameV1 returns the file as the merge sees it: a version 1 file names
// plugins by ID ("cri") in its tables and in disabled_plugins and
// required_plugins; they are renamed to URIs, as containerd 2.x does, so
// that one set of accessors serves every version (1.x reads the IDs
// natively: the same plugins).
func renameV1(f *File) *File {
	if f.EffectiveVersion() >= 2 {
		return f
	}
	out := &File{Name: f.Name, Version: f.Version, Imports: f.Imports, ImportedBy: f.ImportedBy,
		Tree: shallowCopy(f.Tree), pos: f.pos.clone()}
	for _, k := range []string{"disabled_plugins", "required_plugins"} {
		if list, ok := out.Tree[k].([]any); ok {
			renamed := make([]any, len(list))
			for i, v := range list {
				if s, ok := v.(string); ok {
					renamed[i] = V1PluginURI(s)
				} else {
					renamed[i] = v
				}
			}
			out.Tree[k] = renamed
		}
	}
	plugins, _ := f.Tree["plugins"].(map[string]any)
	if plugins == nil {
		return out
	}
	np := shallowCopy(plugins)
	out.Tree["plugins"] = np
	ppos := out.pos.at([]string{"plugins"})
	for id, v := range plugins {
		uri := V1PluginURI(id)
		if uri == id {
			continue
		}
		if _, taken := np[uri]; taken {
			continue
		}
		np[uri] = v
		delete(np, id)
		if ppos != nil && ppos.kids[id] != nil {
			ppos.kids[uri] = ppos.kids[id]
			delete(ppos.kids, id)
		}
	}
	return out
}

// mover relocates the positions (or origins) of moved keys.
type mover func(from, to []string, overwrite bool)

// criServerKeys stay with the CRI gRPC plugin in 2.x (its ServerConfig).
var criServerKeys = map[string]bool{
	"disable_tcp_service": true, "stream_server_address": true, "stream_server_port": true,
	"stream_idle_timeout": true, "enable_tls_streaming": true, "x509_key_pair_streaming": true,
}

// criImagesKeys move from the CRI plugin to the images plugin, replacing
// what is there.
var criImagesKeys = []string{"registry", "image_decryption", "max_concurrent_downloads",
	"image_pull_progress_timeout", "image_pull_with_sync_fs", "stats_collect_period"}

// snapshotKeys move from the CRI `containerd` table to the images plugin,
// but only when that table has `runtimes`.
var snapshotKeys = []string{"snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers"}

// migrateCRI is containerd 2.x's CRI config migration (the images and
// runtime plugins' configMigration, v2.1.9–v2.4.2) on a plugins table,
// which it changes in place (nested tables are copied before they
// change). It returns the snapshot keys it left behind for want of a
// `runtimes` table.
func migrateCRI(np map[string]any, mv mover) (left []string) {
	cri, _ := np[PluginCRIv2].(map[string]any)
	if cri == nil {
		return nil
	}
	from := func(k ...string) []string { return append([]string{"plugins", PluginCRIv2}, k...) }
	// The images plugin: the sandbox image, registry settings, and the
	// snapshotter only next to a runtimes table.
	images := shallowCopy(asMap(np[PluginCRIImages]))
	if v, ok := cri["sandbox_image"]; ok {
		pinned := shallowCopy(asMap(images["pinned_images"]))
		pinned["sandbox"] = v
		images["pinned_images"] = pinned
		mv(from("sandbox_image"), []string{"plugins", PluginCRIImages, "pinned_images", "sandbox"}, true)
	}
	for _, k := range criImagesKeys {
		if v, ok := cri[k]; ok {
			images[k] = v
			mv(from(k), []string{"plugins", PluginCRIImages, k}, true)
		}
	}
	ctrd, _ := cri["containerd"].(map[string]any)
	if _, ok := ctrd["runtimes"]; ok {
		for _, k := range snapshotKeys {
			if v, ok := ctrd[k]; ok {
				images[k] = v
				mv(from("containerd", k), []string{"plugins", PluginCRIImages, k}, true)
			}
		}
	} else {
		for _, k := range snapshotKeys {
			if _, ok := ctrd[k]; ok {
				left = append(left, "containerd."+k)
			}
		}
	}
	np[PluginCRIImages] = images

	// The runtime plugin: every other key, only where it has none.
	runtime := shallowCopy(asMap(np[PluginCRIRuntime]))
	for k, v := range cri {
		switch {
		case k == "cni" || k == "containerd" || k == "sandbox_image" || criServerKeys[k] || slices.Contains(criImagesKeys, k):
			continue
		}
		if _, ok := runtime[k]; !ok {
			runtime[k] = v
			mv(from(k), []string{"plugins", PluginCRIRuntime, k}, false)
		}
	}
	if cni, ok := cri["cni"].(map[string]any); ok {
		rcni := shallowCopy(asMap(runtime["cni"]))
		for k, v := range cni {
			to := k
			if k == "bin_dir" {
				if dirs, ok := rcni["bin_dirs"].([]any); ok && len(dirs) > 0 {
					continue
				}
				to, v = "bin_dirs", []any{v}
			}
			if _, ok := rcni[to]; !ok || to == "bin_dirs" {
				rcni[to] = v
				mv(from("cni", k), []string{"plugins", PluginCRIRuntime, "cni", to}, false)
			}
		}
		runtime["cni"] = rcni
	}
	if ctrd != nil {
		rctrd := shallowCopy(asMap(runtime["containerd"]))
		for k, v := range ctrd {
			if slices.Contains(snapshotKeys, k) {
				continue
			}
			if _, ok := rctrd[k]; !ok {
				rctrd[k] = v
				mv(from("containerd", k), []string{"plugins", PluginCRIRuntime, "containerd", k}, false)
			}
		}
		runtime["containerd"] = rctrd
	}
	np[PluginCRIRuntime] = runtime
	return left
}

// migrateFile migrates one version 1 or 2 file's CRI settings
// (MigratePerFile), noting what the migration leaves behind.
func migrateFile(c *Config, f *File) *File {
	plugins, _ := f.Tree["plugins"].(map[string]any)
	if plugins == nil {
		return f
	}
	out := &File{Name: f.Name, Version: f.Version, Imports: f.Imports, ImportedBy: f.ImportedBy,
		Tree: shallowCopy(f.Tree), pos: f.pos.clone()}
	np := shallowCopy(plugins)
	out.Tree["plugins"] = np
	left := migrateCRI(np, func(from, to []string, overwrite bool) { movePos(out.pos, from, to, overwrite) })
	if len(left) > 0 {
		line := 0
		if p, ok := f.Where(append([]string{"plugins", PluginCRIv2}, strings.Split(left[0], ".")...)...); ok {
			line = p.Line
		}
		c.Unread = append(c.Unread, Unread{File: f.Name, Version: f.EffectiveVersion(), Plugin: PluginCRIv2, Keys: left, Line: line, Why: NoRuntimesTable})
	}
	return out
}

// migrateMergedTree is MigrateMerged's one migration of the merged tree.
func migrateMergedTree(c *Config) {
	plugins, _ := c.Tree["plugins"].(map[string]any)
	if plugins == nil {
		return
	}
	left := migrateCRI(plugins, func(from, to []string, overwrite bool) { c.moveOrigin(from, to, overwrite) })
	// What was left behind, by the file that set it.
	byFile := map[string]*Unread{}
	var order []string
	for _, k := range left {
		_, o, _ := c.Lookup(append([]string{"plugins", PluginCRIv2}, strings.Split(k, ".")...)...)
		u := byFile[o.File]
		if u == nil {
			u = &Unread{File: o.File, Version: c.fileVersion(o.File), Plugin: PluginCRIv2, Line: o.Line, Why: NoRuntimesTable}
			byFile[o.File] = u
			order = append(order, o.File)
		}
		u.Keys = append(u.Keys, k)
	}
	for _, f := range order {
		c.Unread = append(c.Unread, *byFile[f])
	}
}

func (c *Config) fileVersion(name string) int {
	for _, f := range c.Files {
		if f.Name == name {
			return f.EffectiveVersion()
		}
	}
	return 0
}

// noteUnread records the CRI settings under io.containerd.grpc.v1.cri that
// no migration read: containerd 2.x's CRI gRPC plugin keeps only its
// server settings and ignores the rest (`Ignoring unknown key in TOML`).
func (c *Config) noteUnread(migrated map[string]bool) {
	for _, f := range c.Files {
		if migrated[f.Name] {
			continue
		}
		g := renameV1(f)
		plugins, _ := g.Tree["plugins"].(map[string]any)
		cri, _ := plugins[PluginCRIv2].(map[string]any)
		var keys []string
		for k, v := range cri {
			if criServerKeys[k] {
				continue
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				for sk := range sub {
					keys = append(keys, k+"."+sk)
				}
				continue
			}
			keys = append(keys, k)
		}
		if len(keys) == 0 {
			continue
		}
		sort.Strings(keys)
		line := 0
		if n := g.pos.at([]string{"plugins", PluginCRIv2}); n != nil {
			line = n.pos.Line
			if !n.set {
				line = firstLine(n)
			}
		}
		u := Unread{File: f.Name, Version: f.EffectiveVersion(), Plugin: PluginCRIv2, Keys: keys, Line: line}
		switch {
		case f.EffectiveVersion() < 2:
			u.Why = Version1Dropped
		case f.EffectiveVersion() == 2:
			u.Why, u.By = MixedVersions, c.VersionFrom
		default:
			u.Why = NotMigrated
		}
		c.Unread = append(c.Unread, u)
	}
}

// firstLine is the earliest line set under n.
func firstLine(n *posNode) int {
	best := 0
	for _, k := range n.kids {
		l := k.pos.Line
		if !k.set {
			l = firstLine(k)
		}
		if l > 0 && (best == 0 || l < best) {
			best = l
		}
	}
	return best
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

// moveOrigin is movePos for the merged tree's origins.
func (c *Config) moveOrigin(from, to []string, overwrite bool) {
	n := c.origin
	for _, k := range from {
		if n == nil {
			return
		}
		n = n.kids[k]
	}
	if n == nil {
		return
	}
	parent := c.originAt(to[:len(to)-1])
	last := to[len(to)-1]
	if _, exists := parent.kids[last]; exists && !overwrite {
		return
	}
	if parent.kids == nil {
		parent.kids = map[string]*originNode{}
	}
	parent.kids[last] = n
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
