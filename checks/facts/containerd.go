package facts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/config/modprobe"
	"github.com/usernsctl/usernsctl/config/systemd"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
	"github.com/usernsctl/usernsctl/verify/procfs"
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
	if c.Program.Known() {
		return ContainerdOptions(c.Program.Version), "containerd " + c.Program.Version.Raw
	}
	if fileVersion >= 3 {
		v, _ := versions.Parse(rules.ContainerdConfigV3.Value)
		return ContainerdOptions(v), fmt.Sprintf("config version %d (containerd's own version is unknown)", fileVersion)
	}
	v, _ := versions.Parse(rules.ContainerdGlobImports17.Value)
	return ContainerdOptions(v), "assumed containerd 1.x (its version is unknown and the config is not version 3)"
}

// ContainerdOptions is how containerd release v loads its config.
func ContainerdOptions(v versions.Parsed) cdconfig.Options {
	if !v.AtLeast(rules.ContainerdConfigV3.Value) {
		return cdconfig.Options{Rule: cdconfig.ReplacePlugins, Version: 1,
			CWDGlobs: !v.AtLeast(rules.ContainerdGlobImports16.Value) ||
				SameSeries(v, rules.ContainerdGlobImports17) && !v.AtLeast(rules.ContainerdGlobImports17.Value)}
	}
	if !v.AtLeast(rules.ContainerdConfigV4.Value) {
		return cdconfig.Options{Rule: cdconfig.MergeKeys, Migration: cdconfig.MigrateMerged, Version: 3}
	}
	return cdconfig.Options{Rule: cdconfig.MergeKeys, Migration: cdconfig.MigratePerFile, Version: 4}
}

// ContainerdConfigVersion is the highest config version release v reads:
// the one `containerd config default` writes, and a new file should carry.
func ContainerdConfigVersion(v versions.Parsed) int {
	switch {
	case !v.AtLeast(rules.ContainerdConfigV3.Value):
		return 2
	case !v.AtLeast(rules.ContainerdConfigV4.Value):
		return 3
	}
	return 4
}

// SameSeries reports whether v is of the major.minor series of t
// ("2.2.9" and containerd.shim_info_any_type_2_2 = "2.2.7").
func SameSeries(v versions.Parsed, t rules.Threshold) bool {
	tv, err := versions.Parse(t.Value)
	if err != nil || v.Core == nil {
		return false
	}
	a, b := v.Core.Segments(), tv.Core.Segments()
	return len(a) >= 2 && len(b) >= 2 && a[0] == b[0] && a[1] == b[1]
}

// AtLeastBackport reports whether v has a change that landed in main at
// t and was backported to the series of each backport: v ≥ t, or v in a
// backport's series at or above it.
func AtLeastBackport(v versions.Parsed, t rules.Threshold, backports ...rules.Threshold) bool {
	if v.AtLeast(t.Value) {
		return true
	}
	for _, b := range backports {
		if SameSeries(v, b) && v.AtLeast(b.Value) {
			return true
		}
	}
	return false
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

// Daemon is a running daemon process found by a /proc scan (the way
// verify finds containerd), read through the host seam so that a snapshot
// that recorded /proc/PID reads the same.
type Daemon struct {
	Name string
	// PIDs are every process whose comm is Name, lowest first; PID is the
	// first, the one judged.
	PIDs []int
	PID  int
	// ScanErr is why /proc could not be listed.
	ScanErr error
}

// Running reports whether a process was found.
func (d *Daemon) Running() bool { return d.PID > 0 }

// DaemonOf scans /proc once per run for processes called name.
func DaemonOf(env *checks.Env, name string) *Daemon {
	return once(env, "daemon."+name, func(env *checks.Env) *Daemon {
		d := &Daemon{Name: name}
		pids, err := procfs.PIDs(env.Host)
		d.ScanErr = err
		for _, pid := range pids {
			st, err := procfs.ReadStat(env.Host, pid)
			if err != nil || st.Comm != name {
				continue
			}
			// `containerd config dump` and the like are not the daemon.
			if argv, err := procfs.Cmdline(env.Host, pid); err == nil && subcommand(argv) {
				continue
			}
			d.PIDs = append(d.PIDs, pid)
		}
		if len(d.PIDs) > 0 {
			d.PID = d.PIDs[0]
		}
		return d
	})
}

// valueFlags are the daemons' flags that take a separate value.
var valueFlags = map[string]bool{"-c": true, "--config": true, "-l": true, "--log-level": true,
	"-a": true, "--address": true, "--root": true, "--state": true, "--data-root": true, "-H": true, "--host": true}

// subcommand reports a command line with a positional argument: a
// subcommand run of the daemon's binary, not the daemon.
func subcommand(argv []string) bool {
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case valueFlags[a]:
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return true
		}
	}
	return false
}

// ProcStatus is /proc/PID/status (or /proc/self/status) as read.
type ProcStatus struct {
	Path   string
	Fields map[string]string
	Err    error
}

// Caps returns a capability set of the status ("CapEff", "CapBnd").
func (s ProcStatus) Caps(field string) (uint64, bool) {
	v, ok := s.Fields[field]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 16, 64)
	return n, err == nil
}

// ReadProcStatus reads and splits a status file (pid 0 = /proc/self).
func ReadProcStatus(env *checks.Env, pid int) ProcStatus {
	p := "/proc/self/status"
	if pid > 0 {
		p = procfs.Dir(pid) + "/status"
	}
	s := ProcStatus{Path: p, Fields: map[string]string{}}
	b, err := env.Host.ReadFile(p)
	if err != nil {
		s.Err = err
		return s
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(ln, ":"); ok {
			s.Fields[k] = strings.TrimSpace(v)
		}
	}
	return s
}

// CRI is the containerd CRI's runtime side as the effective config sets it:
// its handlers, the default one, and the settings the checks read.
type CRI struct {
	// Plugin is the table the handlers live in (for messages).
	Plugin   string
	Handlers []cdconfig.Handler
	// Default is the handler default_runtime_name names (DefaultFrom).
	Default     cdconfig.Handler
	DefaultFrom cdconfig.Origin
	// Err is a handler setting containerd will not load (wrong type, a
	// default_runtime_name with no handler): the CRI plugin fails.
	Err error
}

// CRIOf is the CRI of the effective containerd config (containerd's
// defaults when there is no main file); nil when the config does not load.
func CRIOf(ctx context.Context, env *checks.Env) *CRI {
	c := ContainerdConfigOf(ctx, env)
	if c.Err != nil || !c.Exists && c.Explicit {
		return nil
	}
	return once(env, "containerd.cri", func(env *checks.Env) *CRI {
		cri := &CRI{Plugin: c.Config.CRIRuntimePlugin()}
		cri.Handlers, cri.Err = c.Config.Handlers()
		if cri.Err == nil {
			cri.Default, cri.DefaultFrom, cri.Err = c.Config.DefaultHandler()
		}
		return cri
	})
}

// HandlerSnapshotter is the snapshotter a handler's pods use: its own
// `snapshotter`, else the CRI's global one.
func HandlerSnapshotter(c *cdconfig.Config, h cdconfig.Handler) (string, string, error) {
	if h.Snapshotter != "" {
		return h.Snapshotter, fmt.Sprintf("the %q handler's snapshotter, %s", h.Name, h.SnapshotterFrom), nil
	}
	s, o, err := c.CRISnapshotter()
	if o.IsZero() {
		return s, "containerd's default", err
	}
	return s, o.String(), err
}

// RemapOutcome is what containerd 2.x does with a pod's image layers when
// the pod has a user namespace (client/snapshotter_opts_unix.go
// resolveSnapshotOptions).
type RemapOutcome int

// Outcomes.
const (
	RemapUnknown RemapOutcome = iota
	// RemapIdmapped: the snapshotter claims remap-ids and the layers are
	// mounted idmapped per pod, without a copy.
	RemapIdmapped
	// RemapMountFails: remap-ids is claimed, so containerd never copies,
	// but an idmapped overlay cannot be mounted on the snapshots'
	// filesystem: every such pod fails (slow_chown does not help).
	RemapMountFails
	// RemapRefused: only-remap-ids without remap-ids: containerd refuses
	// the pod (`snapshotter %q doesn't support idmap mounts on this host`).
	RemapRefused
	// RemapChown: a chowned copy of the image per pod (disk, start time).
	RemapChown
)

// Overlayfs is containerd 2.x's overlayfs snapshotter on this host: what
// containerd itself decides at start (remap-ids when the kernel is ≥5.19,
// else its probe in its own $TMPDIR) and whether an idmapped overlay
// really mounts on the filesystem of the snapshots.
type Overlayfs struct {
	// Claimed: containerd advertises remap-ids; Known is false when
	// neither the kernel release nor a probe can tell.
	Claimed, Known bool
	// ClaimedWhy says how containerd decides, with the values seen.
	ClaimedWhy string
	// TmpDir is containerd's temporary directory (TMPDIR of its unit, else
	// /tmp) and TmpProbe the probe there (run only below the kernel rule).
	TmpDir   string
	TmpProbe *probe.Result
	// Root is the snapshots' directory and RootProbe the probe on its
	// filesystem.
	Root, RootFrom string
	RootProbe      probe.Result
	RootErr        error
}

// Outcome is what happens to a user-namespaced pod's layers with
// slow_chown set to slow.
func (o *Overlayfs) Outcome(slow bool) RemapOutcome {
	switch {
	case !o.Known:
		return RemapUnknown
	case o.Claimed && o.RootProbe.Ran && !o.RootProbe.OK && o.RootProbe.Errno != "ETIMEDOUT":
		return RemapMountFails
	case o.Claimed:
		return RemapIdmapped
	case slow:
		return RemapChown
	}
	return RemapRefused
}

// OverlayfsOf models the overlayfs snapshotter once per run.
func OverlayfsOf(ctx context.Context, env *checks.Env) *Overlayfs {
	return once(env, "containerd.overlayfs", func(env *checks.Env) *Overlayfs {
		o := &Overlayfs{TmpDir: "/tmp"}
		sp := SnapshotterPathOf(ctx, env)
		o.Root, o.RootFrom, o.RootErr = sp.Dir, sp.From, sp.Err
		o.RootProbe = env.Probes.Probe(ctx, probe.Spec{Kind: probe.OverlayIdmap, Path: o.Root})
		vars := unitEnv(env, "containerd.service")
		if t, ok := vars["TMPDIR"]; ok && path.IsAbs(t.Value) {
			o.TmpDir = path.Clean(t.Value)
		}
		rel := checks.KernelRelease(env)
		kv, err := versions.Kernel(rel)
		switch {
		case err == nil && kv.AtLeast(rules.KernelOverlayIdmap.Value):
			o.Claimed, o.Known = true, true
			o.ClaimedWhy = fmt.Sprintf("kernel %s ≥ %s, so containerd claims remap-ids without probing", rel, rules.KernelOverlayIdmap)
			return o
		case err != nil:
			o.ClaimedWhy = fmt.Sprintf("the kernel release is unknown (%q)", rel)
		default:
			o.ClaimedWhy = fmt.Sprintf("kernel %s < %s", rel, rules.KernelOverlayIdmap)
		}
		r := env.Probes.Probe(ctx, probe.Spec{Kind: probe.OverlayIdmap, Path: o.TmpDir})
		o.TmpProbe = &r
		switch {
		case r.Ran:
			o.Claimed, o.Known = r.OK, true
			verdict := "fails"
			if r.OK {
				verdict = "works"
			}
			o.ClaimedWhy += fmt.Sprintf(", so containerd probes an overlay over an idmapped layer in its TMPDIR %s: it %s here (probed), and containerd claims remap-ids only if it works", o.TmpDir, verdict)
		case err == nil:
			// Mainline overlayfs takes idmapped layers from 5.19 on: the
			// probe can only succeed on a kernel with that backported.
			o.Known = true
			o.ClaimedWhy += fmt.Sprintf(", so containerd probes an overlay over an idmapped layer in its TMPDIR %s, which overlayfs refuses before %s (not probed here: %s), so containerd claims no remap-ids", o.TmpDir, rules.KernelOverlayIdmap, reasonOf(r))
		default:
			o.ClaimedWhy += fmt.Sprintf(" and containerd's own probe in %s was not run here (%s)", o.TmpDir, reasonOf(r))
		}
		return o
	})
}

func reasonOf(r probe.Result) string {
	if r.Reason == "" {
		return "no reason given"
	}
	return r.Reason
}

// unitEnv is a service's Environment=/EnvironmentFile= variables.
func unitEnv(env *checks.Env, unit string) systemd.Env {
	u, err := systemd.Load(env.Host, unit)
	if err != nil {
		return nil
	}
	vars, _, _ := u.Environment(env.Host)
	return vars
}
