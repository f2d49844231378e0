package facts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/config/modprobe"
	"github.com/usernsctl/usernsctl/config/systemd"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// ContainerdConfig is the containerd config in effect: where it is, and the
// effective merged config of the main file and its imports.
type ContainerdConfig struct {
	// Path is the main config.toml; Source says how it was found
	// ("default", "--config in /lib/systemd/system/containerd.service line 12").
	Path   string
	Source string
	// Explicit is set when the unit names the file with --config: containerd
	// then refuses to start if it is missing, instead of using defaults.
	Explicit bool
	Exists   bool
	// Config is the effective config; nil when the main file is missing
	// (containerd's defaults, no drop-ins) or could not be loaded (Err).
	Config *cdconfig.Config
	// Err is a read, syntax (file:row:column) or import error.
	Err error
	// Options is how the installed containerd loads and merges the files;
	// OptionsFrom says what decided it ("containerd 2.1.4", or the file's
	// version when containerd's own is unknown).
	Options     cdconfig.Options
	OptionsFrom string
	Program     Program
	// IgnoredDropIns are files in /etc/containerd/conf.d when there is no
	// main file: containerd reads drop-ins only through a main file.
	IgnoredDropIns []string
	// Notes are problems with the unit that did not stop the search.
	Notes []string
}

// Release is the installed containerd's version; ok is false when unknown.
func (c *ContainerdConfig) Release() (major, minor, patch int, ok bool) {
	if !c.Program.Known() {
		return 0, 0, 0, false
	}
	seg := c.Program.Version.Core.Segments()
	for len(seg) < 3 {
		seg = append(seg, 0)
	}
	return seg[0], seg[1], seg[2], true
}

// ContainerdConfigOf locates, loads and merges the containerd config, once
// per check run.
func ContainerdConfigOf(ctx context.Context, env *checks.Env) *ContainerdConfig {
	return once(env, "containerd.config", func(env *checks.Env) *ContainerdConfig {
		return loadContainerd(ctx, env)
	})
}

func loadContainerd(ctx context.Context, env *checks.Env) *ContainerdConfig {
	c := &ContainerdConfig{Path: cdconfig.DefaultPath, Source: "default", Program: VersionOf(ctx, env, versions.Containerd)}
	flags, notes := unitFlags(env, "containerd.service", systemd.FlagSyntax{
		Long: func(s string) string {
			if s == "c" {
				return "config"
			}
			return ""
		},
	})
	c.Notes = notes
	if f, ok := lastFlag(flags, "config"); ok && f.Value != "" {
		c.Path, c.Source, c.Explicit = absPath(f.Value), "--config in "+f.Where(), true
	}

	// The main file is read once: for its version, then with its imports.
	fsys := newOnceFS(env.Host)
	data, err := fsys.ReadFile(c.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.Options, c.OptionsFrom = containerdOptions(c, 0)
		c.IgnoredDropIns, _ = env.Host.Glob(cdconfig.DefaultImports)
		return c
	case err != nil:
		c.Exists, c.Err = true, err
		c.Options, c.OptionsFrom = containerdOptions(c, 0)
		return c
	}
	c.Exists = true
	// The main file's version decides the merge rule only when the
	// installed containerd's version is unknown.
	version := 0
	if f, perr := cdconfig.Parse(bytes.NewReader(data), c.Path); perr == nil {
		version = f.EffectiveVersion()
	}
	c.Options, c.OptionsFrom = containerdOptions(c, version)
	c.Config, c.Err = cdconfig.Load(fsys, c.Path, c.Options)
	return c
}

func containerdOptions(c *ContainerdConfig, fileVersion int) (cdconfig.Options, string) {
	if major, minor, patch, ok := c.Release(); ok {
		return cdconfig.OptionsFor(major, minor, patch), "containerd " + c.Program.Version.Raw
	}
	if fileVersion >= 3 {
		return cdconfig.OptionsFor(2, 0, 0), fmt.Sprintf("config version %d (containerd's own version is unknown)", fileVersion)
	}
	return cdconfig.OptionsFor(1, 7, 16), "assumed containerd 1.x (its version is unknown and the config is not version 3)"
}

// Metacopy is overlayfs's metacopy parameter: live, and as the next boot
// (or module load) will set it.
type Metacopy struct {
	// Live is /sys/module/overlay/parameters/metacopy ("Y" or "N"); ""
	// when the overlay module is not loaded (LiveErr says why).
	Live    string
	LiveErr error
	// Persisted is the last metacopy setting in modprobe.d or on the kernel
	// command line; nil when nothing sets it.
	Persisted *MetacopySetting
	// Errs are modprobe.d files that could not be read.
	Errs []error
}

// MetacopySetting is one place that sets metacopy.
type MetacopySetting struct {
	On    bool
	Raw   string // as written: "on", "Y", "1"
	Where string // "FILE line N" or "/proc/cmdline"
}

// MetacopyPath is the live parameter.
const MetacopyPath = "/sys/module/overlay/parameters/metacopy"

// MetacopyOf reads the live and persisted metacopy settings once.
func MetacopyOf(env *checks.Env) *Metacopy {
	return once(env, "overlay.metacopy", loadMetacopy)
}

func loadMetacopy(env *checks.Env) *Metacopy {
	m := &Metacopy{}
	if b, err := env.Host.ReadFile(MetacopyPath); err != nil {
		m.LiveErr = err
	} else {
		m.Live = strings.TrimSpace(string(b))
	}
	// kmod reads every *.conf once by name, the first directory wins, and
	// applies them in name order: the last setting is the one in effect.
	seen := map[string]string{}
	var names []string
	for _, dir := range modprobe.Dirs {
		files, _ := env.Host.Glob(path.Join(dir, "*.conf"))
		for _, f := range files {
			if _, ok := seen[path.Base(f)]; !ok {
				seen[path.Base(f)] = f
				names = append(names, path.Base(f))
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		p := seen[n]
		b, err := env.Host.ReadFile(p)
		if err != nil {
			m.Errs = append(m.Errs, err)
			continue
		}
		opts, err := modprobe.ParseOptions(bytes.NewReader(b), p)
		if err != nil {
			m.Errs = append(m.Errs, err)
			continue
		}
		for _, o := range opts {
			if o.Module == "overlay" && o.Param == "metacopy" {
				on, _ := modprobe.Bool(o.Value)
				m.Persisted = &MetacopySetting{On: on, Raw: o.Value, Where: o.Where()}
			}
		}
	}
	// overlay.metacopy= on the kernel command line applies to a built-in
	// overlay and to the module when it loads.
	if b, err := env.Host.ReadFile("/proc/cmdline"); err == nil {
		for _, w := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(w, "overlay.metacopy="); ok {
				on, _ := modprobe.Bool(v)
				m.Persisted = &MetacopySetting{On: on, Raw: v, Where: "/proc/cmdline"}
			}
		}
	}
	return m
}

// unitFlags returns the flags of a service's effective ExecStart, with
// variables expanded from its Environment= and EnvironmentFile=. A missing
// unit gives no flags; problems reading it come back as notes.
func unitFlags(env *checks.Env, unit string, syn systemd.FlagSyntax) ([]systemd.Flag, []string) {
	u, err := systemd.Load(env.Host, unit)
	if errors.Is(err, systemd.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, []string{fmt.Sprintf("%s could not be read: %v", unit, err)}
	}
	execs := u.All("Service", "ExecStart")
	if len(execs) == 0 {
		return nil, nil
	}
	vars, _, _ := u.Environment(env.Host)
	cmds, err := systemd.Commands(execs[len(execs)-1], vars)
	if err != nil || len(cmds) == 0 {
		if err != nil {
			return nil, []string{err.Error()}
		}
		return nil, nil
	}
	return systemd.ParseFlags(cmds[0].Argv, syn), nil
}

// lastFlag is the flag's last occurrence: the one pflag keeps.
func lastFlag(flags []systemd.Flag, name string) (systemd.Flag, bool) {
	for i := len(flags) - 1; i >= 0; i-- {
		if flags[i].Name == name {
			return flags[i], true
		}
	}
	return systemd.Flag{}, false
}

// absPath makes a daemon's relative --config absolute: systemd starts
// services in /.
func absPath(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join("/", p)
}
