package containerd

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/hosttree"
)

var v2 = Options{Rule: MergeKeys, Migration: MigrateMerged, Version: 3}
var v23 = Options{Rule: MergeKeys, Migration: MigratePerFile, Version: 4}
var v1x = Options{Rule: ReplacePlugins}

// optionsFor mirrors checks/facts' mapping of a release to its Options
// (the releases themselves are in package rules; tests may name them).
func optionsFor(major, minor, patch int) Options {
	switch {
	case major < 2:
		o := v1x
		o.CWDGlobs = minor < 6 || minor == 6 && patch < 29 || minor == 7 && patch < 16
		return o
	case major == 2 && minor < 3:
		return v2
	}
	return v23
}

func TestLoadImportsGlobRelativeNestedCycle(t *testing.T) {
	h := hosttree.Host(t, map[string]string{
		"/etc/containerd/config.toml": `version = 3
imports = ["conf.d/*.toml", "/opt/extra.toml"]
`,
		"/etc/containerd/conf.d/20-b.toml": "version = 3\n",
		"/etc/containerd/conf.d/10-a.toml": `version = 3
imports = ["../nested/n.toml"]
`,
		"/etc/containerd/conf.d/notes.txt": "not toml, not matched",
		"/etc/containerd/nested/n.toml": `version = 3
imports = ["/etc/containerd/config.toml", "/etc/containerd/conf.d/10-a.toml"]
`,
		"/opt/extra.toml": "version = 2\n",
	})
	c, err := Load(h, DefaultPath, v2)
	if err != nil {
		t.Fatal(err)
	}
	var names, by []string
	for _, f := range c.Files {
		names = append(names, f.Name)
		by = append(by, f.ImportedBy)
	}
	// Breadth-first like containerd: the main file's imports in order
	// (glob matches sorted), then what they import; the cycle back to the
	// main file and the repeated 10-a.toml are loaded once.
	wantNames := []string{DefaultPath, "/etc/containerd/conf.d/10-a.toml", "/etc/containerd/conf.d/20-b.toml", "/opt/extra.toml", "/etc/containerd/nested/n.toml"}
	wantBy := []string{"", DefaultPath, DefaultPath, DefaultPath, "/etc/containerd/conf.d/10-a.toml"}
	if !reflect.DeepEqual(names, wantNames) || !reflect.DeepEqual(by, wantBy) {
		t.Errorf("files %q by %q\nwant %q by %q", names, by, wantNames, wantBy)
	}
	if got := c.Imported(); !reflect.DeepEqual(got, wantNames[1:]) {
		t.Errorf("Imported() = %q", got)
	}
}

func TestLoadMissingAndBadImports(t *testing.T) {
	t.Run("missing main", func(t *testing.T) {
		_, err := Load(hosttree.Host(t, nil), DefaultPath, v2)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want not-exist", err)
		}
	})
	t.Run("main is a directory", func(t *testing.T) {
		_, err := Load(hosttree.Host(t, map[string]string{DefaultPath + "/": ""}), DefaultPath, v2)
		if err == nil || !strings.Contains(err.Error(), "is a directory") || !strings.Contains(err.Error(), DefaultPath) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("glob matching nothing", func(t *testing.T) {
		c, err := Load(hosttree.Host(t, map[string]string{DefaultPath: "version = 3\nimports = ['/etc/containerd/conf.d/*.toml']\n"}), DefaultPath, v2)
		if err != nil || len(c.Files) != 1 {
			t.Fatalf("err = %v files %d", err, len(c.Files))
		}
	})
	t.Run("missing plain import", func(t *testing.T) {
		_, err := Load(hosttree.Host(t, map[string]string{DefaultPath: "version = 3\nimports = ['gone.toml']\n"}), DefaultPath, v2)
		var ie *ImportError
		if !errors.As(err, &ie) || !errors.Is(err, fs.ErrNotExist) || ie.File != "/etc/containerd/gone.toml" || ie.ImportedBy != DefaultPath {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad import syntax names the import", func(t *testing.T) {
		_, err := Load(hosttree.Host(t, map[string]string{
			DefaultPath:                     "version = 3\nimports = ['/etc/containerd/conf.d/*.toml']\n",
			"/etc/containerd/conf.d/x.toml": "version = 3\n[plugins\n",
		}), DefaultPath, v2)
		var se *errs.Input
		if !errors.As(err, &se) || se.File != "/etc/containerd/conf.d/x.toml" || se.Line != 2 {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(err.Error(), "imported by "+DefaultPath) {
			t.Errorf("err %q does not name the importer", err)
		}
	})
	t.Run("bad glob", func(t *testing.T) {
		_, err := Load(hosttree.Host(t, map[string]string{DefaultPath: "version = 3\nimports = ['/etc/[*.toml']\n"}), DefaultPath, v2)
		if err == nil || !strings.Contains(err.Error(), "imports entry") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLoadCWDGlobsOnOldContainerd(t *testing.T) {
	files := map[string]string{
		DefaultPath:                        "version = 2\nimports = ['conf.d/*.toml']\n",
		"/etc/containerd/conf.d/a.toml":    "version = 2\nroot = '/parent-relative'\n",
		"/conf.d/a.toml":                   "version = 2\nroot = '/cwd-relative'\n",
		"/etc/containerd/unused/ignore.md": "",
	}
	for _, tc := range []struct {
		major, minor, patch int
		want                string
	}{
		{1, 6, 20, "/cwd-relative"},
		{1, 6, 29, "/parent-relative"},
		{1, 7, 15, "/cwd-relative"},
		{1, 7, 16, "/parent-relative"},
		{2, 0, 0, "/parent-relative"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			c, err := Load(hosttree.Host(t, files), DefaultPath, optionsFor(tc.major, tc.minor, tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			if root, _, _ := c.Root(); root != tc.want {
				t.Errorf("containerd %d.%d.%d: root %q, want %q", tc.major, tc.minor, tc.patch, root, tc.want)
			}
		})
	}
}

// The trap in traps.md: the same drop-in means different things to 1.x and
// 2.x.
func TestMergeRule1xReplaces2xMerges(t *testing.T) {
	files := map[string]string{
		DefaultPath: `version = 2
root = "/data/containerd"
imports = ["/etc/containerd/conf.d/*.toml"]
disabled_plugins = ["io.containerd.internal.v1.tracing"]

[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "/data/overlay"
  upperdir_label = true
  mount_options = ["a"]

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "pause"
`,
		"/etc/containerd/conf.d/50-x.toml": `version = 2
root = ""
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.zfs"]

[plugins."io.containerd.snapshotter.v1.overlayfs"]
  sync_remove = true
  upperdir_label = false
  mount_options = ["b"]
`,
	}
	overlay := func(c *Config) map[string]any {
		v, _, _ := c.Lookup("plugins", PluginOverlayfs)
		return v.(map[string]any)
	}

	c1, err := Load(hosttree.Host(t, files), DefaultPath, v1x)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := overlay(c1), map[string]any{"sync_remove": true, "upperdir_label": false, "mount_options": []any{"b"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("1.x overlayfs table = %v, want the drop-in's whole table %v", got, want)
	}
	if p, o, _ := c1.OverlayfsRoot(); p != "/data/containerd/"+PluginOverlayfs || o.Line != 2 {
		t.Errorf("1.x overlayfs root %q from %s: root_path was replaced away, the root stays", p, o)
	}
	if v, _, _ := c1.Lookup("disabled_plugins"); len(v.([]any)) != 3 {
		t.Errorf("1.x appends arrays: %v", v)
	}
	if _, _, ok := c1.Lookup("plugins", PluginCRIv2, "sandbox_image"); !ok {
		t.Error("1.x: a plugin table the drop-in does not name must stay")
	}
	wantDropped := []Dropped{{Plugin: PluginOverlayfs, Keys: []string{"root_path"}, From: []string{DefaultPath}, By: "/etc/containerd/conf.d/50-x.toml"}}
	if !reflect.DeepEqual(c1.Dropped, wantDropped) {
		t.Errorf("1.x dropped %+v, want %+v", c1.Dropped, wantDropped)
	}

	c2, err := Load(hosttree.Host(t, files), DefaultPath, v2)
	if err != nil {
		t.Fatal(err)
	}
	want2 := map[string]any{"root_path": "/data/overlay", "sync_remove": true, "upperdir_label": false, "mount_options": []any{"b"}}
	if got := overlay(c2); !reflect.DeepEqual(got, want2) {
		t.Errorf("2.x overlayfs table = %v, want keys merged %v", got, want2)
	}
	p, o, _ := c2.OverlayfsRoot()
	if p != "/data/overlay" || o.File != DefaultPath || o.Line != 7 {
		t.Errorf("2.x overlayfs root %q from %s", p, o)
	}
	if _, o, _ := c2.Lookup("plugins", PluginOverlayfs, "upperdir_label"); o.File != "/etc/containerd/conf.d/50-x.toml" || o.Line != 7 {
		t.Errorf("upperdir_label origin %s, want the drop-in line 7", o)
	}
	if len(c2.Dropped) != 0 {
		t.Errorf("2.x drops nothing: %+v", c2.Dropped)
	}
	if v, _, _ := c2.Lookup("disabled_plugins"); len(v.([]any)) != 2 {
		t.Errorf("2.x unions arrays: %v", v)
	}
	// An empty top-level value never overrides (mergo).
	if root, o, _ := c2.Root(); root != "/data/containerd" || o.Line != 2 {
		t.Errorf("root %q from %s", root, o)
	}
}

func TestVersion1AndVersion2Migration(t *testing.T) {
	t.Run("version 1 plugin IDs", func(t *testing.T) {
		h := hosttree.Host(t, map[string]string{DefaultPath: `[plugins.cri.containerd]
  snapshotter = "native"
[plugins.overlayfs]
  root_path = "/x"
`})
		c, err := Load(h, DefaultPath, optionsFor(1, 6, 20))
		if err != nil {
			t.Fatal(err)
		}
		if c.Main().EffectiveVersion() != 1 {
			t.Errorf("version %d", c.Main().EffectiveVersion())
		}
		if s, o, _ := c.CRISnapshotter(); s != "native" || o.Line != 2 {
			t.Errorf("snapshotter %q from %s", s, o)
		}
		if p, _, _ := c.OverlayfsRoot(); p != "/x" {
			t.Errorf("overlayfs root %q", p)
		}
	})
	t.Run("version 2 under 2.x", func(t *testing.T) {
		h := hosttree.Host(t, map[string]string{DefaultPath: `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "zfs"
  default_runtime_name = "crun"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
  BinaryName = "/usr/bin/crun"
`})
		c, err := Load(h, DefaultPath, v2)
		if err != nil {
			t.Fatal(err)
		}
		if s, o, _ := c.CRISnapshotter(); s != "zfs" || o.Line != 3 || o.File != DefaultPath {
			t.Errorf("snapshotter %q from %s", s, o)
		}
		if s, o, _ := c.CRIRuntime(); s != "crun" || o.Line != 4 {
			t.Errorf("runtime %q from %s", s, o)
		}
		if h, _, err := c.DefaultHandler(); err != nil || h.BinaryName != "/usr/bin/crun" || h.BinaryFrom.Line != 6 || h.Type != "" {
			t.Errorf("default handler %+v, %v", h, err)
		}
		if len(c.Unread) != 0 {
			t.Errorf("unread %+v", c.Unread)
		}
		// The same file under 1.x reads the keys where they are.
		c1, _ := Load(h, DefaultPath, v1x)
		if s, _, _ := c1.CRISnapshotter(); s != "zfs" {
			t.Errorf("1.x snapshotter %q", s)
		}
	})
	t.Run("version 2 snapshotter without runtimes", func(t *testing.T) {
		h := hosttree.Host(t, map[string]string{DefaultPath: `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "zfs"
`})
		for _, opts := range []Options{v2, v23} {
			c, err := Load(h, DefaultPath, opts)
			if err != nil {
				t.Fatal(err)
			}
			if s, o, _ := c.CRISnapshotter(); s != "overlayfs" || !o.IsZero() {
				t.Errorf("snapshotter %q from %s: containerd migrates it only beside a runtimes table", s, o)
			}
			want := []Unread{{File: DefaultPath, Version: 2, Plugin: PluginCRIv2, Keys: []string{"containerd.snapshotter"}, Line: 3, Why: NoRuntimesTable}}
			if !reflect.DeepEqual(c.Unread, want) {
				t.Errorf("unread %+v, want %+v", c.Unread, want)
			}
		}
	})
	t.Run("versionless under 2.0-2.2 and 2.3", func(t *testing.T) {
		h := hosttree.Host(t, map[string]string{DefaultPath: `disabled_plugins = ["cri", "io.containerd.internal.v1.tracing"]
[plugins.cri]
  sandbox_image = "pause:3.9"
[plugins.cri.containerd]
  snapshotter = "native"
[plugins.cri.containerd.runtimes.runc.options]
  BinaryName = "/opt/runc"
`})
		c, err := Load(h, DefaultPath, v2)
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != 3 {
			t.Errorf("merged version %d, want 3 (a versionless file counts as the release's)", c.Version)
		}
		if s, _, _ := c.CRISnapshotter(); s != "overlayfs" {
			t.Errorf("2.0-2.2 snapshotter %q: a versionless file's CRI settings are never migrated", s)
		}
		if len(c.Unread) != 1 || c.Unread[0].Why != Version1Dropped || c.Unread[0].Line != 2 ||
			!reflect.DeepEqual(c.Unread[0].Keys, []string{"containerd.runtimes", "containerd.snapshotter", "sandbox_image"}) {
			t.Errorf("unread %+v", c.Unread)
		}
		if off, _ := c.Disabled(PluginCRIv2); !off {
			t.Error("disabled_plugins \"cri\" is renamed to the CRI plugin's URI")
		}
		c3, err := Load(h, DefaultPath, v23)
		if err != nil {
			t.Fatal(err)
		}
		if s, o, _ := c3.CRISnapshotter(); s != "native" || o.Line != 5 {
			t.Errorf("2.3 snapshotter %q from %s: migrated", s, o)
		}
		if len(c3.Unread) != 0 {
			t.Errorf("2.3 unread %+v", c3.Unread)
		}
	})
	t.Run("mixed versions under 2.0-2.2", func(t *testing.T) {
		files := map[string]string{
			DefaultPath: `version = 2
imports = ["/etc/containerd/conf.d/*.toml"]
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
`,
			"/etc/containerd/conf.d/10.toml": "version = 3\n",
		}
		c, err := Load(hosttree.Host(t, files), DefaultPath, v2)
		if err != nil {
			t.Fatal(err)
		}
		if on, _, _ := c.RestrictOOMScoreAdj(); on {
			t.Error("a version 3 drop-in makes the merged version 3: the main file's CRI settings are not migrated")
		}
		want := []Unread{{File: DefaultPath, Version: 2, Plugin: PluginCRIv2, Keys: []string{"restrict_oom_score_adj"}, Line: 3, Why: MixedVersions, By: "/etc/containerd/conf.d/10.toml"}}
		if !reflect.DeepEqual(c.Unread, want) {
			t.Errorf("unread %+v, want %+v", c.Unread, want)
		}
		c3, _ := Load(hosttree.Host(t, files), DefaultPath, v23)
		if on, o, _ := c3.RestrictOOMScoreAdj(); !on || o.Line != 4 {
			t.Errorf("2.3 migrates each file: restrict %v from %s", on, o)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		var c *Config // no main file
		s, o, err := c.CRISnapshotter()
		r, _, _ := c.CRIRuntime()
		root, _, _ := c.Root()
		sc, _, _ := c.SlowChown()
		if s != "overlayfs" || !o.IsZero() || err != nil || r != "runc" || root != DefaultRoot || sc || o.String() != "default" {
			t.Errorf("defaults: %q %q %q %v %s", s, r, root, sc, o)
		}
	})
}

func TestTypedAccessorsReportWrongTypes(t *testing.T) {
	h := hosttree.Host(t, map[string]string{DefaultPath: `version = 3
[plugins.'io.containerd.snapshotter.v1.overlayfs']
  slow_chown = "yes"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 1
`})
	c, err := Load(h, DefaultPath, v2)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.SlowChown(); err == nil || !strings.Contains(err.Error(), DefaultPath+" line 3") || !strings.Contains(err.Error(), `not the string "yes"`) {
		t.Errorf("slow_chown err = %v", err)
	}
	if _, _, err := c.CRISnapshotter(); err == nil || !strings.Contains(err.Error(), "must be a string") {
		t.Errorf("snapshotter err = %v", err)
	}
}

func TestLoadRealDefaults(t *testing.T) {
	for _, tc := range []struct {
		file string
		opts Options
	}{
		{"default-1.6.20.toml", optionsFor(1, 6, 20)},
		{"default-1.7.24.toml", optionsFor(1, 7, 24)},
		{"default-2.1.9.toml", optionsFor(2, 1, 9)},
	} {
		t.Run(tc.file, func(t *testing.T) {
			h := hosttree.Host(t, map[string]string{DefaultPath: string(readTestdata(t, tc.file))})
			c, err := Load(h, DefaultPath, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			s, so, err1 := c.CRISnapshotter()
			r, _, err2 := c.CRIRuntime()
			sc, _, err3 := c.SlowChown()
			root, _, err4 := c.OverlayfsRoot()
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				t.Fatal(err)
			}
			if s != "overlayfs" || so.IsZero() || r != "runc" || sc || root != "/var/lib/containerd/"+PluginOverlayfs {
				t.Errorf("%s: snapshotter %q (%s) runtime %q slow_chown %v root %q", tc.file, s, so, r, sc, root)
			}
		})
	}
}
