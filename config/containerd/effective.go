package containerd

import (
	"fmt"
	"path"
	"sort"
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

// RuncShim is the runtime_type of containerd's runc shim, the type of the
// default `runc` handler.
const RuncShim = "io.containerd.runc.v2"

// criRuntimePlugin is the table holding the CRI runtime settings: 1.x's
// CRI plugin, 2.x's runtime plugin.
func (c *Config) criRuntimePlugin() string {
	if c != nil && c.Rule == ReplacePlugins {
		return PluginCRIv2
	}
	return PluginCRIRuntime
}

// CRIRuntimePlugin names the table of the CRI runtime settings (handlers,
// restrict_oom_score_adj) for messages.
func (c *Config) CRIRuntimePlugin() string { return c.criRuntimePlugin() }

// Handler is one CRI runtime handler: `containerd.runtimes.<Name>`.
type Handler struct {
	Name string
	// Type is runtime_type (the shim); containerd's own `runc` handler is
	// RuncShim unless the config changes it.
	Type     string
	TypeFrom Origin
	// Path is runtime_path: the shim binary, when not found by Type.
	Path     string
	PathFrom Origin
	// BinaryName is options.BinaryName: the OCI runtime the runc shim runs
	// ("" = runc, looked up on containerd's PATH).
	BinaryName string
	BinaryFrom Origin
	// Snapshotter is the handler's own `snapshotter` ("" = the global one).
	Snapshotter     string
	SnapshotterFrom Origin
}

// OCIBinary is the OCI runtime the runc shim runs for this handler.
func (h Handler) OCIBinary() string {
	if h.BinaryName != "" {
		return h.BinaryName
	}
	return DefaultRuntime
}

// Handlers lists the CRI runtime handlers by name: containerd's default
// `runc` and every table under containerd.runtimes. A value of the wrong
// type is an error (the CRI plugin does not load).
func (c *Config) Handlers() ([]Handler, error) {
	plugin := c.criRuntimePlugin()
	names := map[string]bool{DefaultRuntime: true}
	if v, _, ok := c.Lookup("plugins", plugin, "containerd", "runtimes"); ok {
		rts, isMap := v.(map[string]any)
		if !isMap {
			_, o, _ := c.Lookup("plugins", plugin, "containerd", "runtimes")
			return nil, fmt.Errorf("%s: containerd.runtimes must be a table, not %s", o, describe(v))
		}
		for name := range rts {
			names[name] = true
		}
	}
	var out []Handler
	for name := range names {
		p := func(k ...string) []string {
			return append([]string{"plugins", plugin, "containerd", "runtimes", name}, k...)
		}
		def := ""
		if name == DefaultRuntime {
			def = RuncShim
		}
		h := Handler{Name: name}
		var errs []error
		var err error
		h.Type, h.TypeFrom, err = c.String(def, p("runtime_type")...)
		errs = append(errs, err)
		h.Path, h.PathFrom, err = c.String("", p("runtime_path")...)
		errs = append(errs, err)
		h.BinaryName, h.BinaryFrom, err = c.String("", p("options", "BinaryName")...)
		errs = append(errs, err)
		h.Snapshotter, h.SnapshotterFrom, err = c.String("", p("snapshotter")...)
		errs = append(errs, err)
		for _, e := range errs {
			if e != nil {
				return nil, e
			}
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DefaultHandler is the handler default_runtime_name names; an error when
// no runtimes table has it (the CRI plugin then does not load).
func (c *Config) DefaultHandler() (Handler, Origin, error) {
	name, o, err := c.CRIRuntime()
	if err != nil {
		return Handler{}, o, err
	}
	hs, err := c.Handlers()
	if err != nil {
		return Handler{}, o, err
	}
	for _, h := range hs {
		if h.Name == name {
			return h, o, nil
		}
	}
	return Handler{}, o, fmt.Errorf("%s: no corresponding runtime configured in `containerd.runtimes` for `containerd` `default_runtime_name = \"%s\"`", o, name)
}

// RestrictOOMScoreAdj is the CRI's restrict_oom_score_adj: pods' OOM
// scores are clamped to containerd's own.
func (c *Config) RestrictOOMScoreAdj() (bool, Origin, error) {
	return c.Bool("plugins", c.criRuntimePlugin(), "restrict_oom_score_adj")
}

// ProxySnapshotter is a `[proxy_plugins.<name>]` of type snapshot.
type ProxySnapshotter struct {
	Name         string
	Capabilities []string
	From         Origin
}

// ProxySnapshotter returns the proxy snapshotter called name, if any.
func (c *Config) ProxySnapshotter(name string) (ProxySnapshotter, bool) {
	v, o, ok := c.Lookup("proxy_plugins", name)
	m, isMap := v.(map[string]any)
	if !ok || !isMap {
		return ProxySnapshotter{}, false
	}
	if t, _ := m["type"].(string); t != "snapshot" {
		return ProxySnapshotter{}, false
	}
	p := ProxySnapshotter{Name: name, From: o}
	if caps, ok := m["capabilities"].([]any); ok {
		for _, x := range caps {
			if s, ok := x.(string); ok {
				p.Capabilities = append(p.Capabilities, s)
			}
		}
	}
	return p, true
}

// Disabled reports whether the effective disabled_plugins names uri (as a
// URI, or as its version 1 ID in a version 1 config), and where.
func (c *Config) Disabled(uri string) (bool, Origin) {
	v, o, ok := c.Lookup("disabled_plugins")
	list, _ := v.([]any)
	if !ok {
		return false, Origin{}
	}
	for _, x := range list {
		if s, _ := x.(string); s == uri || V1PluginURI(s) == uri && c.Version < 2 {
			return true, o
		}
	}
	return false, Origin{}
}
