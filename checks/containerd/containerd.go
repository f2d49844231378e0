// Package containerd holds the containerd area's checks: the config in
// effect (located, parsed, its version and imports) and what the overlayfs
// snapshotter needs for user-namespaced containers on this host.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// Checkers returns the containerd area's checks.
func Checkers() []checks.Checker {
	targets := []checks.Target{checks.Containerd, checks.Kubernetes}
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "containerd.config", Title: "containerd config",
			Doc:     "The containerd config in effect (--config in the unit, else /etc/containerd/config.toml) parses strictly, its `version` suits the installed containerd (2.x refuses version 1), and every import loads and is no newer than the main file.",
			Targets: targets,
		}, checkConfig),
		checks.New(checks.Info{
			ID: "containerd.snapshotter", Title: "overlayfs snapshotter and user namespaces",
			Doc:     "containerd 2.x: overlay on idmapped layers works on the snapshotter's filesystem (probed), else slow_chown = true is set in the effective config; containerd 1.7: overlay metacopy is on and persisted, to cut the per-pod chown cost.",
			Targets: targets,
		}, checkSnapshotter),
	}
}

// migrateRemedy converts a version 1 (or 2) config with containerd 2.x's
// own tool, without touching the file in place.
const migrateRemedy = "convert it with containerd's own tool: `containerd config migrate > /tmp/config.toml`, review the result, then move it over %s (restart containerd)"

func configEvidence(c *facts.ContainerdConfig, r checks.Result) checks.Result {
	r = r.With("path", c.Path).With("source", c.Source).With("exists", c.Exists).
		With("merge_rule", c.Options.Rule.String()).With("merge_rule_from", c.OptionsFrom)
	if c.Config != nil {
		files := make([]map[string]any, 0, len(c.Config.Files))
		for _, f := range c.Config.Files {
			files = append(files, map[string]any{"path": f.Name, "version": f.EffectiveVersion(), "imported_by": f.ImportedBy})
		}
		r = r.With("files", files).With("imports", c.Config.Imported()).With("version", c.Config.Main().EffectiveVersion())
		if rt, _, err := c.Config.CRIRuntime(); err == nil {
			r = r.With("cri_default_runtime", rt)
		}
	}
	if len(c.Notes) > 0 {
		r = r.With("notes", c.Notes)
	}
	return r
}

func checkConfig(ctx context.Context, env *checks.Env) checks.Result {
	c := facts.ContainerdConfigOf(ctx, env)
	ev := func(r checks.Result) checks.Result { return configEvidence(c, r) }
	major, minor, _, known := c.Release()
	native := 3
	if known {
		native = cdconfig.Native(major, minor)
	}

	switch {
	case !c.Exists && c.Explicit:
		return ev(checks.Failf(fmt.Sprintf("create it (`containerd config default > %s`, then review it) or remove --config from the unit", c.Path),
			"%s does not exist, but containerd is started with it (%s): containerd refuses to start without it", c.Path, c.Source))
	case !c.Exists && len(c.IgnoredDropIns) > 0:
		return ev(checks.Warnf(fmt.Sprintf("create %s with `version = %d` and `imports = [%q]` so that they are read", c.Path, native, cdconfig.DefaultImports),
			"there is no %s, so containerd runs with its defaults and ignores %s: drop-ins are read only through a main config's imports",
			c.Path, strings.Join(c.IgnoredDropIns, ", ")).With("ignored_drop_ins", c.IgnoredDropIns))
	case !c.Exists:
		return ev(checks.Passf("no %s (%s): containerd's defaults are in effect (root %s, overlayfs snapshotter); drop-ins in /etc/containerd/conf.d would be ignored without a main config",
			c.Path, c.Source, cdconfig.DefaultRoot))
	case c.Err != nil:
		return ev(checks.Failf(loadRemedy(c.Err), "%v: containerd will not start with this config", c.Err))
	}

	cfg := c.Config
	main := cfg.Main()
	ver := main.EffectiveVersion()
	var problems []string
	var remedies []string
	fail := func(msg, remedy string) {
		problems, remedies = append(problems, msg), append(remedies, remedy)
	}
	if known {
		lo, hi := cdconfig.Supported(major, minor)
		switch {
		case ver < lo:
			fail(fmt.Sprintf("%s has no `version` line, so it is a version 1 config, and containerd %s does not read version 1 (removed in 2.0): it fails at start with `invalid disabled plugin URI \"cri\" expect io.containerd.x.vx`, or ignores settings under short plugin names such as [plugins.cri]",
				c.Path, c.Program.Version),
				fmt.Sprintf(migrateRemedy, c.Path))
		case ver > hi:
			fail(fmt.Sprintf("%s has version %d, but containerd %s reads at most version %d: it refuses to start (`unsupported config version`)",
				c.Path, ver, c.Program.Version, hi),
				fmt.Sprintf("write the config for containerd %s: `containerd config default` prints a version %d file; re-apply your settings to it", c.Program.Version, hi))
		}
	} else if ver > 4 {
		fail(fmt.Sprintf("%s has version %d: no containerd release reads it (versions 1 to 4 exist)", c.Path, ver),
			fmt.Sprintf("set the version containerd writes with `containerd config default` in %s", c.Path))
	}
	for _, f := range cfg.Files[1:] {
		if f.EffectiveVersion() > ver {
			fail(fmt.Sprintf("%s (imported by %s) has version %d, newer than the main file's %d: containerd 2.3+ refuses to start (`drop-in config version %d higher than root config version %d`) and older releases misread its plugin keys",
				f.Name, f.ImportedBy, f.EffectiveVersion(), ver, f.EffectiveVersion(), ver),
				fmt.Sprintf("give %s the main file's `version = %d` (and that version's key names), or raise %s to version %d", f.Name, ver, c.Path, f.EffectiveVersion()))
		}
	}
	if len(problems) > 0 {
		return ev(checks.Failf(strings.Join(remedies, "; "), "%s", strings.Join(problems, "; ")))
	}

	imports := "no imports"
	if im := cfg.Imported(); len(im) > 0 {
		imports = "imports " + strings.Join(im, ", ")
	}
	reader := "containerd (version unknown)"
	if known {
		reader = "containerd " + c.Program.Version.Raw
	}
	if len(cfg.Dropped) > 0 {
		var lost, fix []string
		for _, d := range cfg.Dropped {
			lost = append(lost, fmt.Sprintf("%s's [plugins.%q] replaces the whole table, dropping %s set in %s",
				d.By, d.Plugin, strings.Join(d.Keys, ", "), strings.Join(d.From, ", ")))
			fix = append(fix, fmt.Sprintf("repeat %s in %s's [plugins.%q]", strings.Join(d.Keys, ", "), d.By, d.Plugin))
		}
		return ev(checks.Warnf(strings.Join(fix, "; ")+" (containerd 1.x does not merge plugin tables; check with `containerd config dump`)",
			"%s: %s (merge rule of %s)", c.Path, strings.Join(lost, "; "), reader))
	}
	if known && major < 2 && ver < 2 {
		return ev(checks.Warnf(fmt.Sprintf("before upgrading to containerd 2.x, rewrite %s as version 2 (`version = 2`, full plugin URIs such as io.containerd.grpc.v1.cri); containerd 2.x's `containerd config migrate` converts it", c.Path),
			"%s (%s) is a version 1 config (no `version` line): %s reads it, but 1.7 warns it is deprecated and containerd 2.x will not read it; %s",
			c.Path, c.Source, reader, imports))
	}
	note := ""
	if known && major >= 2 && ver < native {
		note = fmt.Sprintf(" (migrated to version %d on every start; `containerd config migrate` avoids that)", native)
	}
	return ev(checks.Passf("%s (%s) parses: version %d%s, read by %s; %s", c.Path, c.Source, ver, note, reader, imports))
}

func loadRemedy(err error) string {
	var se *errs.Input
	var ie *cdconfig.ImportError
	switch {
	case errors.As(err, &ie) && errors.As(err, &se):
		return fmt.Sprintf("fix %s (imported by %s) at row %d column %d, or remove it from the imports; check with `containerd config dump`", se.File, ie.ImportedBy, se.Line, se.Column)
	case errors.As(err, &ie):
		return fmt.Sprintf("create %s or remove it from the imports of %s (a missing plain path is fatal; a glob matching nothing is fine)", ie.File, ie.ImportedBy)
	case errors.As(err, &se) && se.Line > 0:
		return fmt.Sprintf("fix %s at row %d column %d, then check with `containerd config dump`", se.File, se.Line, se.Column)
	case errors.As(err, &se):
		return fmt.Sprintf("fix %s, then check with `containerd config dump`", se.File)
	}
	return "make the config readable by root (a regular file), then check with `containerd config dump`"
}

const (
	slowChownRemedy = "`usernsctl apply --target containerd --slow-chown on` (writes slow_chown = true to a drop-in: every image is then chowned per pod, costing disk space and pod start time), or put the snapshotter on a filesystem and kernel (≥5.19) with overlay idmap support"
	metacopyRemedy  = "`usernsctl apply --target containerd --metacopy on` (sets the live parameter and persists `options overlay metacopy=on` in /etc/modprobe.d/; it affects every overlay mount on the host)"
	chownCost       = "containerd 1.7 chowns a copy of every image snapshot for each user-namespaced pod"
)

func checkSnapshotter(ctx context.Context, env *checks.Env) checks.Result {
	c := facts.ContainerdConfigOf(ctx, env)
	major, minor, _, known := c.Release()
	switch {
	case !c.Program.Installed:
		return checks.Skipf("containerd is not installed (runtime.containerd reports it)")
	case !known:
		return checks.Skipf("containerd's version is unknown (runtime.containerd reports it)")
	case major < 1 || major == 1 && minor < 7:
		return checks.Skipf("containerd %s has no user namespace support for pods (runtime.containerd fails it)", c.Program.Version)
	case c.Err != nil || !c.Exists && c.Explicit:
		return checks.Skipf("the containerd config does not load (containerd.config reports it)")
	}
	cfg := c.Config
	snap, from, err := cfg.CRISnapshotter()
	if err != nil {
		return checks.Failf("set the snapshotter to a snapshotter name such as \"overlayfs\"", "%v: the CRI plugin will not load", err)
	}
	ev := func(r checks.Result) checks.Result {
		return r.With("containerd", c.Program.Version.Raw).With("snapshotter", snap).With("snapshotter_from", from.String())
	}
	if snap != cdconfig.DefaultSnapshotter {
		note := ""
		if migratedFrom(cfg, from) {
			// Seen with containerd 2.1.9: `containerd config dump` did not
			// carry a version 2 file's containerd.snapshotter over to the
			// images plugin, whatever its migration code intends.
			note = fmt.Sprintf("; it is written the version 2 way, which containerd %s migrates: confirm with `containerd config dump` that [plugins.%q] shows it", c.Program.Version, cdconfig.PluginCRIImages)
		}
		return ev(checks.Skipf("the CRI plugin uses the %q snapshotter (%s), not overlayfs: the overlayfs idmap and chown rules do not apply; check that %q supports user namespaces%s",
			snap, from, snap, note))
	}
	if major == 1 {
		if env.Target == checks.Kubernetes && env.KubeAtLeast("1.27") {
			return ev(checks.Skipf("containerd %s cannot run user-namespaced pods for Kubernetes %s (runtime.containerd fails it)", c.Program.Version, env.Kube))
		}
		return ev(checkMetacopy(env))
	}
	return ev(checkIdmap(ctx, env, c))
}

// migratedFrom reports whether a 2.x value came from a file older than
// version 3, i.e. through containerd's config migration.
func migratedFrom(cfg *cdconfig.Config, o cdconfig.Origin) bool {
	if cfg == nil || cfg.Rule != cdconfig.MergeKeys || o.IsZero() {
		return false
	}
	for _, f := range cfg.Files {
		if f.Name == o.File {
			return f.EffectiveVersion() < 3
		}
	}
	return false
}

// checkIdmap is containerd 2.x: overlay on idmapped lower layers, or
// slow_chown.
func checkIdmap(ctx context.Context, env *checks.Env, c *facts.ContainerdConfig) checks.Result {
	cfg := c.Config
	slow, slowFrom, err := cfg.SlowChown()
	if err != nil {
		return checks.Failf("write `slow_chown = true` or `slow_chown = false` (a TOML boolean)", "%v: the overlayfs snapshotter will not load", err)
	}
	// The probe runs on the filesystem that holds the snapshots (shared with
	// probe.overlay_idmap: one probe run, one key in probes.json).
	sp := facts.SnapshotterPathOf(ctx, env)
	probePath, pathFrom := sp.Dir, sp.From
	if sp.Err != nil {
		return checks.Failf("write the directory as a TOML string", "%v: containerd will not start", sp.Err)
	}
	res := env.Probes.Probe(ctx, probe.Spec{Kind: probe.OverlayIdmap, Path: probePath})
	r := func(x checks.Result) checks.Result {
		x = x.With("probe_path", probePath).With("probe_path_from", pathFrom).
			With("probe", map[string]any{"ran": res.Ran, "ok": res.OK, "reason": res.Reason, "errno": res.Errno, "step": res.Step, "error": res.Error}).
			With("slow_chown", slow).With("slow_chown_from", slowFrom.String())
		return x
	}

	var supported bool
	var why string
	if res.Ran {
		supported = res.OK
		if res.OK {
			why = fmt.Sprintf("overlay on an idmapped lower layer works on the filesystem of %s (probed)", probePath)
		} else {
			why = fmt.Sprintf("overlay on an idmapped lower layer does not work on the filesystem of %s (probe failed: %s)", probePath, probeFailure(res))
		}
	} else {
		rel := checks.KernelRelease(env)
		kv, kerr := versions.Kernel(rel)
		if kerr != nil {
			return r(checks.Warnf("run `usernsctl check` as root on the live host so that the probe runs",
				"cannot tell whether overlay works on idmapped layers here: the probe did not run (%s) and the kernel release is unknown (%q)", reason(res), rel))
		}
		supported = kv.AtLeast("5.19")
		verdict := "≥ 5.19 supports"
		if !supported {
			verdict = "< 5.19 does not support"
		}
		why = fmt.Sprintf("the probe did not run (%s), so by the kernel release alone: %s %s overlay on idmapped layers (the filesystem of %s is not tested)",
			reason(res), rel, verdict, probePath)
	}
	switch {
	case supported && slow:
		return r(checks.Passf("%s; slow_chown = true (%s) is only the fallback: containerd %s uses idmapped layers when they work", why, slowFrom, c.Program.Version))
	case supported:
		return r(checks.Passf("%s: containerd %s maps image layers per pod without copying", why, c.Program.Version))
	case slow:
		return r(checks.Passf("%s; slow_chown = true (%s): containerd %s chowns a copy of every image snapshot per pod instead (works, at a disk and start-up cost)", why, slowFrom, c.Program.Version))
	}
	setting := "slow_chown is not set"
	if !slowFrom.IsZero() {
		setting = fmt.Sprintf("slow_chown = false (%s)", slowFrom)
	}
	return r(checks.Failf(slowChownRemedy,
		"%s, and %s in the effective config: containerd %s refuses user-namespaced pods with `snapshotter \"overlayfs\" doesn't support idmap mounts on this host, configure `slow_chown` to allow a slower and expensive fallback`",
		why, setting, c.Program.Version))
}

func reason(res probe.Result) string {
	if res.Reason == "" {
		return "no reason given"
	}
	return res.Reason
}

func probeFailure(res probe.Result) string {
	var parts []string
	for _, s := range []string{res.Step, res.Errno, res.Error} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "no detail"
	}
	return strings.Join(parts, ": ")
}

// checkMetacopy is containerd 1.7, which always chowns: metacopy makes the
// chown copy inodes instead of whole files.
func checkMetacopy(env *checks.Env) checks.Result {
	m := facts.MetacopyOf(env)
	live := strings.ToUpper(m.Live)
	r := func(x checks.Result) checks.Result {
		x = x.With("metacopy_live", m.Live)
		if m.Persisted != nil {
			x = x.With("metacopy_persisted", m.Persisted.Raw).With("metacopy_persisted_in", m.Persisted.Where)
		}
		if len(m.Errs) > 0 {
			errs := make([]string, len(m.Errs))
			for i, e := range m.Errs {
				errs[i] = e.Error()
			}
			x = x.With("modprobe_errors", errs)
		}
		return x
	}
	persistedOn := m.Persisted != nil && m.Persisted.On
	switch {
	case live == "Y" && persistedOn:
		return r(checks.Passf("overlay metacopy is on (%s = Y) and persisted (%s): %s, but copies only inodes", facts.MetacopyPath, m.Persisted.Where, chownCost))
	case live == "Y" && m.Persisted != nil:
		return r(checks.Warnf(metacopyRemedy, "overlay metacopy is on now (%s = Y), but %s sets metacopy=%s for the next boot: then %s with full file copies",
			facts.MetacopyPath, m.Persisted.Where, m.Persisted.Raw, chownCost))
	case live == "Y":
		return r(checks.Warnf(metacopyRemedy, "overlay metacopy is on now (%s = Y), but nothing in /etc/modprobe.d or on the kernel command line keeps it after a reboot; %s", facts.MetacopyPath, chownCost))
	case live == "N" && persistedOn:
		return r(checks.Warnf("reboot, or reload the overlay module when no overlay is mounted, so that "+m.Persisted.Where+" applies; "+metacopyRemedy,
			"overlay metacopy is off (%s = N) although %s sets it on: %s, copying whole files until it applies", facts.MetacopyPath, m.Persisted.Where, chownCost))
	case live == "N":
		return r(checks.Warnf(metacopyRemedy, "overlay metacopy is off (%s = N): %s, copying whole files (disk space and pod start time grow with image size)", facts.MetacopyPath, chownCost))
	case m.Live == "" && persistedOn:
		return r(checks.Passf("the overlay module is not loaded yet (%v); %s turns metacopy on when it loads", m.LiveErr, m.Persisted.Where))
	case m.Live == "":
		return r(checks.Warnf(metacopyRemedy, "the overlay module is not loaded yet (%v) and nothing persists metacopy=on: when it loads, %s with full file copies", m.LiveErr, chownCost))
	}
	return r(checks.Warnf(metacopyRemedy, "%s reads %q, not Y or N", facts.MetacopyPath, m.Live))
}
