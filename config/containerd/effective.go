package containerd

import (
	"fmt"
	"path"
)

// Defaults and names containerd uses.
const (
	DefaultPath        = "/etc/containerd/config.toml"
	DefaultRoot        = "/var/lib/containerd"
	DefaultSnapshotter = "overlayfs"
	DefaultRuntime     = "runc"
	// DefaultImports is what `containerd config default` writes from 2.2.
	DefaultImports = "/etc/containerd/conf.d/*.toml"

	PluginOverlayfs  = "io.containerd.snapshotter.v1.overlayfs"
	PluginCRIv2      = "io.containerd.grpc.v1.cri"   // 1.x (and version 2 files)
	PluginCRIImages  = "io.containerd.cri.v1.images" // 2.x
	PluginCRIRuntime = "io.containerd.cri.v1.runtime"
)

// Lookup returns the effective value at a key path and where it was set.
// A nil Config (no main file) has no values.
func (c *Config) Lookup(p ...string) (any, Origin, bool) {
	if c == nil {
		return nil, Origin{}, false
	}
	v := c.lookup(p)
	if v == nil {
		return nil, Origin{}, false
	}
	n := c.origin
	for _, k := range p {
		if n == nil {
			break
		}
		n = n.kids[k]
	}
	var o Origin
	if n != nil {
		o = n.origin
	}
	return v, o, true
}

// String returns the effective string at p, or def when unset. A value of
// another type is an error: the plugin that reads it fails to load.
func (c *Config) String(def string, p ...string) (string, Origin, error) {
	v, o, ok := c.Lookup(p...)
	if !ok {
		return def, Origin{}, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return def, o, fmt.Errorf("%s: %s must be a string, not %s", o, dotted(p), describe(v))
	}
	if s == "" {
		return def, o, nil
	}
	return s, o, nil
}

// Bool returns the effective boolean at p, false when unset.
func (c *Config) Bool(p ...string) (bool, Origin, error) {
	v, o, ok := c.Lookup(p...)
	if !ok {
		return false, Origin{}, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, o, fmt.Errorf("%s: %s must be true or false, not %s", o, dotted(p), describe(v))
	}
	return b, o, nil
}

// Root is containerd's persistent data directory (`root`).
func (c *Config) Root() (string, Origin, error) {
	return c.String(DefaultRoot, "root")
}

// OverlayfsRoot is the overlayfs snapshotter's directory: its `root_path`,
// else <root>/io.containerd.snapshotter.v1.overlayfs.
func (c *Config) OverlayfsRoot() (string, Origin, error) {
	p, o, err := c.String("", "plugins", PluginOverlayfs, "root_path")
	if err != nil || p != "" {
		return p, o, err
	}
	root, o, err := c.Root()
	return path.Join(root, PluginOverlayfs), o, err
}

// SlowChown is the overlayfs snapshotter's `slow_chown` (containerd 2.x).
func (c *Config) SlowChown() (bool, Origin, error) {
	return c.Bool("plugins", PluginOverlayfs, "slow_chown")
}

// CRISnapshotter is the snapshotter the CRI plugin unpacks images with
// (overlayfs unless set): 1.x reads it from the CRI plugin's `containerd`
// table, 2.x from the images plugin.
func (c *Config) CRISnapshotter() (string, Origin, error) {
	if c != nil && c.Rule == ReplacePlugins {
		return c.String(DefaultSnapshotter, "plugins", PluginCRIv2, "containerd", "snapshotter")
	}
	return c.String(DefaultSnapshotter, "plugins", PluginCRIImages, "snapshotter")
}

// CRIRuntime is the CRI plugin's default runtime handler (runc unless set).
func (c *Config) CRIRuntime() (string, Origin, error) {
	if c != nil && c.Rule == ReplacePlugins {
		return c.String(DefaultRuntime, "plugins", PluginCRIv2, "containerd", "default_runtime_name")
	}
	return c.String(DefaultRuntime, "plugins", PluginCRIRuntime, "containerd", "default_runtime_name")
}

// Imported lists the files loaded through imports, in load order.
func (c *Config) Imported() []string {
	if c == nil || len(c.Files) < 2 {
		return nil
	}
	out := make([]string, 0, len(c.Files)-1)
	for _, f := range c.Files[1:] {
		out = append(out, f.Name)
	}
	return out
}

func dotted(p []string) string {
	s := ""
	for i, k := range p {
		if i > 0 {
			s += "."
		}
		if isBare(k) {
			s += k
		} else {
			s += fmt.Sprintf("%q", k)
		}
	}
	return s
}

func isBare(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
