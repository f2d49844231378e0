// Package containerd holds the containerd area's checks: the config in
// effect (located, parsed, its version and imports) and what the overlayfs
// snapshotter needs for user-namespaced containers on this host.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
)

// Checkers returns the containerd area's checks.
func Checkers() []checks.Checker {
	targets := []checks.Target{checks.Containerd, checks.Kubernetes}
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "containerd.config", Title: "containerd config",
			Doc:     fmt.Sprintf("The containerd config in effect (--config in the unit, else /etc/containerd/config.toml) parses strictly and loads: its merged `version` suits the installed containerd, plugin names are full URIs where the version needs them, every CRI setting is where that containerd reads it (containerd from %s and before %s ignores a versionless file's CRI tables, and a version 2 file's beside a version 3 one), the CRI plugin is not disabled and its default handler exists.", rules.ContainerdConfigV3, rules.ContainerdConfigV4),
			Targets: targets,
		}, facts.WhereKubeletUses(versions.Containerd, checkConfig)),
		checks.New(checks.Info{
			ID: "containerd.snapshotter", Title: "the pods' snapshotter and user namespaces",
			Doc:     fmt.Sprintf("The snapshotter the CRI's default handler uses (its own, else the global one; every other handler's too): containerd 2.x's overlayfs idmaps layers when containerd claims remap-ids (kernel ≥%s, else its $TMPDIR probe) and that works on the snapshots' filesystem (probed), else it refuses pods unless slow_chown (a copy per pod); other snapshotters copy, proxy plugins as their declared capabilities say; containerd 1.x always copies (metacopy on and persisted cuts the cost).", rules.KernelOverlayIdmap),
			Targets: targets,
		}, facts.WhereKubeletUses(versions.Containerd, checkSnapshotter)),
	}
}

// v1Remedy makes a versionless file one whose CRI settings containerd 2.x
// migrates: `containerd config migrate` of 2.0–2.2 loads it the same way
// as the daemon and drops them too.
const v1Remedy = "add `version = 2` at the top of %s and give its plugin tables their full names ([plugins.\"io.containerd.grpc.v1.cri\"] for [plugins.cri], [plugins.\"io.containerd.grpc.v1.cri\".containerd] for [plugins.cri.containerd], …), then restart containerd: it migrates version 2 CRI settings on every start (`containerd config migrate` of containerd before %s drops a versionless file's CRI settings, like the daemon)"

func configEvidence(c *facts.ContainerdConfig, r checks.Result) checks.Result {
	r = r.With("path", c.Path).With("source", c.Source).With("exists", c.Exists).
		With("merge_rule", c.Options.Rule.String()).With("merge_rule_from", c.OptionsFrom)
	if c.Config != nil {
		files := make([]map[string]any, 0, len(c.Config.Files))
		for _, f := range c.Config.Files {
			files = append(files, map[string]any{"path": f.Name, "version": f.EffectiveVersion(), "imported_by": f.ImportedBy})
		}
		r = r.With("files", files).With("imports", c.Config.Imported()).With("version", c.Config.Version)
		if rt, _, err := c.Config.CRIRuntime(); err == nil {
			r = r.With("cri_default_runtime", rt)
		}
		if len(c.Config.Unread) > 0 {
			r = r.With("unread", c.Config.Unread)
		}
	}
	if len(c.Notes) > 0 {
		r = r.With("notes", c.Notes)
	}
	return r
}

// criPlugins are the plugins that serve the CRI: disabling one leaves the
// kubelet without a runtime.
func criPlugins(rule cdconfig.Rule) []string {
	if rule == cdconfig.ReplacePlugins {
		return []string{cdconfig.PluginCRIv2}
	}
	return []string{cdconfig.PluginCRIv2, cdconfig.PluginCRIRuntime, cdconfig.PluginCRIImages}
}

func checkConfig(ctx context.Context, env *checks.Env) checks.Result {
	c := facts.ContainerdConfigOf(ctx, env)
	ev := func(r checks.Result) checks.Result { return configEvidence(c, r) }
	known := c.Program.Known()
	native := 3
	if known {
		native = facts.ContainerdConfigVersion(c.Program.Version)
	}
	kube := env.Target == checks.Kubernetes

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
	reader := "containerd (version unknown)"
	if known {
		reader = "containerd " + c.Program.Version.Raw
	}
	var f checks.Findings
	last := cfg.Files[len(cfg.Files)-1].Name
	ver := cfg.Version
	refused := 0
	switch {
	case known && ver > native:
		why := fmt.Sprintf("unsupported config version `%d`", ver)
		if cfg.Rule == cdconfig.MergeKeys {
			why = fmt.Sprintf("expected containerd config version equal to or less than `%d`, got `%d`", native, ver)
		}
		from := cfg.VersionFrom
		f.Fail(fmt.Sprintf("%s has version %d, the last version line %s loads, and %s reads at most version %d: it refuses to start (`failed to load TOML from %s: %s`)",
			from, ver, reader, reader, native, last, why),
			fmt.Sprintf("write %s for %s: `version = %d` with that version's plugin names (`containerd config default` prints a version %d file), or upgrade containerd", from, reader, native, native))
		refused++
	case !known && ver > 4:
		f.Fail(fmt.Sprintf("%s has version %d: no containerd release reads it (versions 1 to 4 exist)", cfg.VersionFrom, ver),
			fmt.Sprintf("set the version containerd writes with `containerd config default` in %s", cfg.VersionFrom))
		refused++
	}
	refused += shortNames(&f, cfg, last)
	if refused > 0 {
		return ev(f.Result(checks.Result{}, ""))
	}

	for _, u := range cfg.Unread {
		unread(&f, c, u, reader, native)
	}
	for _, p := range criPlugins(cfg.Rule) {
		if off, o := cfg.Disabled(p); off {
			how := ""
			if cfg.Main().Version == 0 {
				how = fmt.Sprintf(" (written \"cri\" in a file without `version`, which %s reads as version 1)", reader)
			}
			msg := fmt.Sprintf("disabled_plugins (%s) disables %s%s", o, p, how)
			fix := fmt.Sprintf("remove it from disabled_plugins in %s (containerd.io's packaged config disables the CRI for Docker-only hosts)", o.File)
			if cfg.Main().Version == 0 {
				fix += fmt.Sprintf(" and give the file `version = %d`", native)
			}
			fix += ", then restart containerd and the kubelet"
			if kube {
				f.Fail(msg+": the kubelet cannot use containerd (`validate CRI v1 runtime API for endpoint \"unix:///run/containerd/containerd.sock\": rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService`)", fix)
			} else {
				f.Note(msg + ": only CRI clients need it, `ctr` does not")
			}
			break
		}
	}
	if cri := facts.CRIOf(ctx, env); cri != nil && cri.Err != nil {
		msg := fmt.Sprintf("%v: the CRI plugin does not load", cri.Err)
		if kube {
			f.Fail(msg+", so the kubelet has no runtime", fmt.Sprintf("set default_runtime_name to a handler under [plugins.%q.containerd.runtimes], or add that handler, then restart containerd", cri.Plugin))
		} else {
			f.Note(msg + " (only CRI clients need it)")
		}
	}
	if len(cfg.Dropped) > 0 {
		var lost, fix []string
		for _, d := range cfg.Dropped {
			lost = append(lost, fmt.Sprintf("%s's [plugins.%q] replaces the whole table, dropping %s set in %s",
				d.By, d.Plugin, strings.Join(d.Keys, ", "), strings.Join(d.From, ", ")))
			fix = append(fix, fmt.Sprintf("repeat %s in %s's [plugins.%q]", strings.Join(d.Keys, ", "), d.By, d.Plugin))
		}
		f.Warn(fmt.Sprintf("%s: %s (merge rule of %s)", c.Path, strings.Join(lost, "; "), reader),
			strings.Join(fix, "; ")+" (containerd 1.x does not merge plugin tables; check with `containerd config dump`)")
	}
	if cfg.Rule == cdconfig.ReplacePlugins && ver < 2 {
		f.Warn(fmt.Sprintf("%s (%s) is a version 1 config (no `version` line): %s reads it, but warns it is deprecated, and containerd from %s and before %s ignores its CRI settings", c.Path, c.Source, reader, rules.ContainerdConfigV3, rules.ContainerdConfigV4),
			"before upgrading to containerd 2.x, "+fmt.Sprintf(v1Remedy, c.Path, rules.ContainerdConfigV4))
	}

	imports := "no imports"
	if im := cfg.Imported(); len(im) > 0 {
		imports = "imports " + strings.Join(im, ", ")
	}
	note := ""
	if cfg.Rule == cdconfig.MergeKeys && known && cfg.Main().EffectiveVersion() < native {
		note = fmt.Sprintf(" (migrated to version %d on every start; `containerd config migrate` avoids that)", native)
	}
	return ev(f.Result(checks.Result{}, fmt.Sprintf("%s (%s) parses: version %d%s, read by %s; %s", c.Path, c.Source, cfg.Main().EffectiveVersion(), note, reader, imports)))
}

// shortNames is R26: plugin names without a dot where the version needs
// full URIs.
func shortNames(f *checks.Findings, cfg *cdconfig.Config, last string) (refused int) {
	// 1.x validates names only when the merged version is 2, then in
	// every file; 2.x renames a versionless file's names.
	if cfg.Rule == cdconfig.ReplacePlugins && cfg.Version < 2 {
		return 0
	}
	for _, file := range cfg.Files {
		if cfg.Rule == cdconfig.MergeKeys && file.EffectiveVersion() < 2 {
			continue
		}
		for _, k := range []string{"disabled_plugins", "required_plugins"} {
			list, _ := file.Tree[k].([]any)
			for _, x := range list {
				s, _ := x.(string)
				if s == "" || validURI(s, cfg.Rule) {
					continue
				}
				what := strings.TrimSuffix(k, "_plugins")
				p, _ := file.Where(k)
				f.Fail(fmt.Sprintf("%s line %d: %s names %q, not a plugin URI: containerd refuses to start (`failed to load TOML from %s: invalid %s plugin URI %q expect io.containerd.x.vx`)", file.Name, p.Line, k, s, last, what, s),
					fmt.Sprintf("write the full URI in %s (%q is %s)", file.Name, s, cdconfig.V1PluginURI(s)))
				refused++
			}
		}
		plugins, _ := file.Tree["plugins"].(map[string]any)
		for name := range plugins {
			if validURI(name, cfg.Rule) {
				continue
			}
			p, _ := file.Where("plugins", name)
			if cfg.Rule == cdconfig.ReplacePlugins {
				f.Fail(fmt.Sprintf("%s line %d: [plugins.%s] is a version 1 plugin ID in a version %d config: containerd refuses to start (`failed to load TOML from %s: invalid plugin key URI %q expect io.containerd.x.vx`)", file.Name, p.Line, name, cfg.Version, last, name),
					fmt.Sprintf("write [plugins.%q] in %s", cdconfig.V1PluginURI(name), file.Name))
				refused++
			} else {
				f.Warn(fmt.Sprintf("%s line %d: [plugins.%s] is a version 1 plugin ID in a version %d file: containerd 2.x knows no such plugin and ignores the table", file.Name, p.Line, name, file.EffectiveVersion()),
					fmt.Sprintf("write [plugins.%q] in %s (and the version %d key names under it)", cdconfig.V1PluginURI(name), file.Name, file.EffectiveVersion()))
			}
		}
	}
	return refused
}

// validURI is the check containerd applies to plugin names: 1.x wants
// io.containerd.<type>.<version>.<id>, 2.x any name with a dot.
func validURI(s string, rule cdconfig.Rule) bool {
	if rule == cdconfig.ReplacePlugins {
		return strings.HasPrefix(s, "io.containerd.") && len(strings.SplitN(s, ".", 4)) == 4
	}
	return strings.Contains(s, ".")
}

// unread is R9, R22 and R23: CRI settings containerd 2.x does not read.
// The snapshotter left behind for want of a runtimes table is
// containerd.snapshotter's.
func unread(f *checks.Findings, c *facts.ContainerdConfig, u cdconfig.Unread, reader string, native int) {
	at := u.File
	if u.Line > 0 {
		at = fmt.Sprintf("%s line %d", u.File, u.Line)
	}
	keys := strings.Join(u.Keys, ", ")
	v3 := fmt.Sprintf("[plugins.'%s'] and [plugins.'%s']", cdconfig.PluginCRIRuntime, cdconfig.PluginCRIImages)
	switch u.Why {
	case cdconfig.Version1Dropped:
		fix := fmt.Sprintf(v1Remedy, u.File, rules.ContainerdConfigV4)
		f.Warn(fmt.Sprintf("%s has no `version` line: %s reads it as version 1, renames its plugins and ignores its CRI settings (%s at %s; containerd logs `Ignoring unknown key in TOML for plugin` for them), so the CRI runs with its defaults", u.File, reader, keys, at), fix)
	case cdconfig.MixedVersions:
		f.Warn(fmt.Sprintf("%s (version 2) sets %s under [plugins.%q] (%s), but %s is version 3 and loaded after it, so the merged config is version 3 and %s migrates no version 2 CRI settings: they are ignored", u.File, keys, u.Plugin, at, u.By, reader),
			fmt.Sprintf("rewrite %s as version 3 (`version = 3`, the settings under %s), the version of %s", u.File, v3, u.By))
	case cdconfig.NotMigrated:
		f.Warn(fmt.Sprintf("%s is version %d but sets %s under [plugins.%q] (%s), the version 2 place: %s reads the CRI settings of a version %d file under %s only, so these are ignored", u.File, u.Version, keys, u.Plugin, at, reader, u.Version, v3),
			fmt.Sprintf("move them in %s under %s (the version 3 names)", u.File, v3))
	}
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
	metacopyRemedy = "`usernsctl apply --target containerd --metacopy on` (sets the live parameter and persists `options overlay metacopy=on` in /etc/modprobe.d/; it affects every overlay mount on the host)"
	chownCost      = "containerd 1.x chowns a copy of every image snapshot for each user-namespaced pod"
)

// use is one snapshotter and the CRI handlers whose pods use it.
type use struct {
	name, from string
	handlers   []string
	dflt       bool
}

func checkSnapshotter(ctx context.Context, env *checks.Env) checks.Result {
	c := facts.ContainerdConfigOf(ctx, env)
	v := c.Program.Version
	switch {
	case !c.Program.Installed:
		return checks.Skipf("containerd is not installed (runtime.containerd reports it)")
	case !c.Program.Known():
		return checks.Skipf("containerd's version is unknown (runtime.containerd reports it)")
	case !v.AtLeast(rules.ContainerdCRIUserns.Value):
		return checks.Skipf("containerd %s has no user namespace support for pods (runtime.containerd fails it)", v)
	case c.Err != nil || !c.Exists && c.Explicit:
		return checks.Skipf("the containerd config does not load (containerd.config reports it)")
	case env.Target == checks.Kubernetes && !env.KubeAtLeast(rules.KubeletUserNSMin.Value):
		return checks.Skipf("Kubernetes %s has no user-namespaced pods (runtime.kubelet fails it)", env.Kube)
	}
	if env.Target == checks.Kubernetes && !v.AtLeast(rules.ContainerdIdmap.Value) &&
		(env.KubeAtLeast(rules.KubeletHandlerUserns.Value) || env.KubeAtLeast(rules.KubeletUserNSStateful.Value) && v.AtLeast(rules.ContainerdCRIMountIdmapRefused.Value)) {
		return checks.Skipf("containerd %s cannot run user-namespaced pods for Kubernetes %s (runtime.containerd fails it), so its snapshots are not judged", v, env.Kube)
	}
	cri := facts.CRIOf(ctx, env)
	if cri == nil || cri.Err != nil {
		return checks.Skipf("the CRI plugin's handlers do not load (containerd.config reports it)")
	}
	cfg := c.Config
	// The snapshotter of each handler: the default's decides, the others
	// are judged too (a RuntimeClass may pick them).
	var uses []*use
	byName := map[string]*use{}
	for _, h := range append([]cdconfig.Handler{cri.Default}, cri.Handlers...) {
		name, from, err := facts.HandlerSnapshotter(cfg, h)
		if err != nil {
			return checks.Failf("set the snapshotter to a snapshotter name such as \"overlayfs\"", "%v: the CRI plugin will not load", err)
		}
		u := byName[name]
		if u == nil {
			u = &use{name: name, from: from}
			byName[name] = u
			uses = append(uses, u)
		}
		if !slices.Contains(u.handlers, h.Name) {
			u.handlers = append(u.handlers, h.Name)
		}
		if h.Name == cri.Default.Name {
			u.dflt = true
		}
	}
	r := checks.Result{}.With("containerd", v.Raw).With("default_handler", cri.Default.Name).
		With("snapshotter", uses[0].name).With("snapshotter_from", uses[0].from)
	var f checks.Findings
	var passes []string
	bad, fails, slowFixes := 0, 0, 0
	for _, u := range uses {
		judge := judgeSnapshotter2
		if !v.AtLeast(rules.ContainerdIdmap.Value) {
			judge = judgeSnapshotter17
		}
		g := &found{}
		pass, ev := judge(ctx, env, c, u, g)
		for k, x := range ev {
			r = r.With(k, x)
		}
		n, sf := mergeFindings(&f, g, u)
		fails, slowFixes = fails+n, slowFixes+sf
		bad += len(g.list)
		if pass != "" {
			if !u.dflt {
				pass = fmt.Sprintf("runtime handler %s uses the %q snapshotter (%s): %s", quoteAll(u.handlers), u.name, u.from, pass)
			}
			passes = append(passes, pass)
		}
	}
	for _, un := range unreadOf(cfg) {
		if un.Why == cdconfig.NoRuntimesTable {
			bad += notMigrated(&f, c, un)
		}
	}
	if bad > 0 {
		for _, p := range passes {
			f.Note(p)
		}
		passes = nil
	}
	if v.AtLeast(rules.ContainerdIdmap.Value) && env.Target == checks.Kubernetes {
		if n, ev := rootBinds(ctx, env, cfg, &f); n > 0 || ev != nil {
			fails += n
			r = r.With("root_idmap_probe", ev)
		}
	}
	// apply sets slow_chown only where that is the fix.
	r = r.With("slow_chown_fixes", fails > 0 && fails == slowFixes)
	if env.Target == checks.Containerd && v.AtLeast(rules.ContainerdIdmap.Value) {
		f.Note("`ctr run --uidmap` without --remap-labels always chowns a copy; this is what CRI pods, nerdctl and `ctr run --remap-labels` get")
	}
	return f.Result(r, strings.Join(passes, "; "))
}

// rootBinds is R16: containerd 2.x bind-mounts every hostUsers: false
// pod's /etc/hostname, /etc/resolv.conf (and /etc/hosts when the kubelet
// gives none) from <root>/io.containerd.grpc.v1.cri/sandboxes/<id>/ with
// the pod's mappings, so the OCI runtime idmaps them on the filesystem of
// containerd's root. The overlay probe covers it when the snapshots live
// under the root; when root_path puts them elsewhere, the root is probed.
func rootBinds(ctx context.Context, env *checks.Env, cfg *cdconfig.Config, f *checks.Findings) (int, map[string]any) {
	root, rootFrom, err := cfg.Root()
	if err != nil {
		return 0, nil
	}
	if sp := facts.SnapshotterPathOf(ctx, env); sp.Dir == root {
		return 0, nil
	}
	res := env.Probes.Probe(ctx, probe.Spec{Kind: probe.Idmap, Path: root})
	ev := map[string]any{"path": root, "ran": res.Ran, "ok": res.OK, "errno": res.Errno, "error": res.Error}
	if !res.Ran || res.OK || res.Errno == "ETIMEDOUT" {
		return 0, ev
	}
	from := "containerd's default root"
	if !rootFrom.IsZero() {
		from = "set in " + rootFrom.String()
	}
	f.Fail(fmt.Sprintf("idmapped mounts fail on the filesystem of containerd's root %s (%s; probe failed: %s): containerd bind-mounts every hostUsers: false pod's /etc/hostname and /etc/resolv.conf from %s/io.containerd.grpc.v1.cri/sandboxes/ with the pod's mappings, so runc fails every such container (`failed to set MOUNT_ATTR_IDMAP on …`)",
		root, from, probeFailure(res), root),
		"put containerd's root (`root` in its config) on a filesystem with idmapped-mount support (ext4, xfs, btrfs), restart containerd")
	return 1, ev
}

func unreadOf(cfg *cdconfig.Config) []cdconfig.Unread {
	if cfg == nil {
		return nil
	}
	return cfg.Unread
}

// mergeFindings adds one snapshotter's findings: in full for the default
// handler's, at most a warning for a snapshotter only other handlers use.
func mergeFindings(f *checks.Findings, g *found, u *use) (fails, slowFixes int) {
	for _, x := range g.list {
		switch {
		case x.fail && u.dflt:
			f.Fail(x.msg, x.remedy)
			fails++
			if x.slowFixes {
				slowFixes++
			}
		case x.fail:
			f.Warn(fmt.Sprintf("runtime handler %s (not the default) uses the %q snapshotter: %s; pods of a RuntimeClass with that handler and hostUsers: false fail", quoteAll(u.handlers), u.name, x.msg), x.remedy)
		case u.dflt:
			f.Warn(x.msg, x.remedy)
		default:
			f.Warn(fmt.Sprintf("runtime handler %s (not the default) uses the %q snapshotter: %s", quoteAll(u.handlers), u.name, x.msg), x.remedy)
		}
	}
	return fails, slowFixes
}

// found collects one snapshotter's findings before mergeFindings weighs
// them by the handlers that use it.
type found struct {
	list []finding
}

type finding struct {
	fail bool
	// slowFixes: slow_chown = true turns this failure into the copy.
	slowFixes   bool
	msg, remedy string
}

func (g *found) Fail(msg, remedy string) {
	g.list = append(g.list, finding{fail: true, msg: msg, remedy: remedy})
}

func (g *found) Warn(msg, remedy string) { g.list = append(g.list, finding{msg: msg, remedy: remedy}) }

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// notMigrated is R9: a version 2 snapshotter that the migration skips.
func notMigrated(f *checks.Findings, c *facts.ContainerdConfig, u cdconfig.Unread) (n int) {
	for _, k := range u.Keys {
		p := append([]string{"plugins", cdconfig.PluginCRIv2}, strings.Split(k, ".")...)
		var val any
		for _, file := range c.Config.Files {
			if file.Name == u.File {
				val = lookup(file.Tree, p)
			}
		}
		if k == "containerd.snapshotter" {
			eff, _, _ := c.Config.CRISnapshotter()
			if fmt.Sprint(val) == eff {
				continue // ignored, but it says what is in effect anyway
			}
			n++
			f.Warn(fmt.Sprintf("%s line %d sets snapshotter = %q under [plugins.%q.containerd] without a runtimes table in that table: containerd %s migrates a version 2 snapshotter only beside `runtimes`, so it ignores this one and the CRI uses %q",
				u.File, u.Line, fmt.Sprint(val), cdconfig.PluginCRIv2, c.Program.Version, eff),
				fmt.Sprintf("set it where containerd 2.x reads it: `[plugins.'%s']` `snapshotter = %q` in a version 3 file (or add the handler table [plugins.%q.containerd.runtimes.runc] beside it, which makes the migration copy it)", cdconfig.PluginCRIImages, fmt.Sprint(val), cdconfig.PluginCRIv2))
			continue
		}
		n++
		f.Warn(fmt.Sprintf("%s sets %s = %v under [plugins.%q] without a runtimes table: containerd %s ignores it", u.File, k, val, cdconfig.PluginCRIv2, c.Program.Version),
			fmt.Sprintf("set it under [plugins.'%s'] in a version 3 file", cdconfig.PluginCRIImages))
	}
	return n
}

func lookup(tree map[string]any, p []string) any {
	var cur any = tree
	for _, k := range p {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// judgeSnapshotter17 is containerd 1.7: every snapshotter gets a chowned
// copy per pod (1.7's overlayfs declares no capabilities).
func judgeSnapshotter17(_ context.Context, env *checks.Env, c *facts.ContainerdConfig, u *use, f *found) (string, map[string]any) {
	if u.name != cdconfig.DefaultSnapshotter {
		f.Warn(fmt.Sprintf("the %q snapshotter (%s): %s, copying whole files (disk space and pod start time grow with image size); setuid and setgid bits are lost in the copy", u.name, u.from, chownCost),
			"upgrade to containerd 2.x with overlayfs on a kernel ≥"+rules.KernelOverlayIdmap.Value+" (idmapped layers, no copy)")
		return "", nil
	}
	r := checkMetacopy(env)
	switch r.Status {
	case checks.Warn:
		f.Warn(r.Message, r.Remedy)
	case checks.Pass:
		return r.Message, r.Evidence
	}
	return "", r.Evidence
}

// judgeSnapshotter2 is containerd 2.x (R10–R14).
func judgeSnapshotter2(ctx context.Context, env *checks.Env, c *facts.ContainerdConfig, u *use, f *found) (string, map[string]any) {
	cfg, v := c.Config, c.Program.Version
	if p, ok := cfg.ProxySnapshotter(u.name); ok {
		caps := strings.Join(p.Capabilities, ",")
		switch {
		case slices.Contains(p.Capabilities, "remap-ids"):
			return fmt.Sprintf("proxy snapshotter %q declares remap-ids (%s): containerd %s trusts the declaration and hands it the pods' id maps", u.name, p.From, v), nil
		case slices.Contains(p.Capabilities, "only-remap-ids"):
			f.Fail(fmt.Sprintf("proxy snapshotter %q declares capabilities = [%s] (%s), only-remap-ids without remap-ids: containerd %s refuses every user-namespaced pod on it (`snapshotter %q doesn't support idmap mounts on this host, configure `slow_chown` to allow a slower and expensive fallback`; slow_chown is an overlayfs setting and cannot help)", u.name, caps, p.From, v, u.name),
				fmt.Sprintf("declare what the plugin can do in [proxy_plugins.%s] capabilities: add \"remap-ids\" if it idmaps layers, or drop \"only-remap-ids\" to let containerd copy", u.name))
		default:
			f.Warn(fmt.Sprintf("proxy snapshotter %q declares no remap capability (%s): containerd %s chowns a copy of every image for each user-namespaced pod (disk space and pod start time)", u.name, p.From, v),
				fmt.Sprintf("if the plugin can idmap layers, declare it: capabilities = [\"remap-ids\"] in [proxy_plugins.%s]", u.name))
		}
		return "", nil
	}
	switch u.name {
	case cdconfig.DefaultSnapshotter:
		return judgeOverlayfs(ctx, env, c, u, f)
	case "erofs":
		if v.AtLeast(rules.ContainerdConfigV4.Value) {
			o := facts.OverlayfsOf(ctx, env)
			if !o.Known || o.Claimed {
				return fmt.Sprintf("erofs (%s): %s, so containerd %s idmaps its layers", u.from, o.ClaimedWhy, v), nil
			}
			f.Fail(fmt.Sprintf("erofs (%s) always declares only-remap-ids and, as %s, no remap-ids: containerd %s refuses every user-namespaced pod on it (`snapshotter \"erofs\" doesn't support idmap mounts on this host, …`; erofs has no slow_chown)", u.from, o.ClaimedWhy, v),
				"boot a kernel ≥"+rules.KernelOverlayIdmap.Value+", or use the overlayfs snapshotter for user-namespaced pods")
			return "", nil
		}
	}
	f.Warn(fmt.Sprintf("the %q snapshotter (%s) declares no remap capability: containerd %s chowns a copy of every image for each user-namespaced pod (disk space and pod start time grow with image size)", u.name, u.from, v),
		"use the overlayfs snapshotter on a kernel ≥"+rules.KernelOverlayIdmap.Value+" with its snapshots on a filesystem with idmapped mounts (ext4, xfs, btrfs) to map layers without copying")
	return "", nil
}

// judgeOverlayfs is R10–R13 for containerd 2.x's overlayfs.
func judgeOverlayfs(ctx context.Context, env *checks.Env, c *facts.ContainerdConfig, u *use, f *found) (string, map[string]any) {
	v := c.Program.Version
	slow, slowFrom, err := c.Config.SlowChown()
	if err != nil {
		f.Fail(fmt.Sprintf("%v: the overlayfs snapshotter will not load", err), "write `slow_chown = true` or `slow_chown = false` (a TOML boolean)")
		return "", nil
	}
	o := facts.OverlayfsOf(ctx, env)
	if o.RootErr != nil {
		f.Fail(fmt.Sprintf("%v: containerd will not start", o.RootErr), "write the directory as a TOML string")
		return "", nil
	}
	res := o.RootProbe
	ev := map[string]any{
		"probe_path": o.Root, "probe_path_from": o.RootFrom,
		"probe":     map[string]any{"ran": res.Ran, "ok": res.OK, "reason": res.Reason, "errno": res.Errno, "step": res.Step, "error": res.Error},
		"remap_ids": o.Claimed, "remap_ids_known": o.Known, "remap_ids_why": o.ClaimedWhy,
		"slow_chown": slow, "slow_chown_from": slowFrom.String(),
	}
	if o.TmpProbe != nil {
		ev["tmpdir"] = o.TmpDir
		ev["tmpdir_probe"] = map[string]any{"ran": o.TmpProbe.Ran, "ok": o.TmpProbe.OK, "errno": o.TmpProbe.Errno}
	}
	root := fmt.Sprintf("the filesystem of %s (%s)", o.Root, o.RootFrom)
	var mount string
	switch {
	case !res.Ran:
		mount = fmt.Sprintf("%s was not probed (%s)", root, reason(res))
	case res.OK:
		mount = fmt.Sprintf("an overlay on an idmapped lower layer works on %s (probed)", root)
	default:
		mount = fmt.Sprintf("an overlay on an idmapped lower layer fails on %s (probe failed: %s)", root, probeFailure(res))
	}
	slowSet := "slow_chown is not set in the effective config"
	if !slowFrom.IsZero() {
		slowSet = fmt.Sprintf("slow_chown = %t (%s)", slow, slowFrom)
	}
	switch o.Outcome(slow) {
	case facts.RemapIdmapped:
		msg := fmt.Sprintf("%s; %s: containerd %s maps image layers per pod without copying", o.ClaimedWhy, mount, v)
		if slow {
			msg += fmt.Sprintf("; slow_chown = true (%s) is never used: remap-ids wins", slowFrom)
		}
		return msg, ev
	case facts.RemapMountFails:
		also := ""
		if slow {
			also = fmt.Sprintf(" (slow_chown = true, %s, is never used: remap-ids wins)", slowFrom)
		}
		f.Fail(fmt.Sprintf("%s, but %s: containerd %s never copies when it claims remap-ids, so every user-namespaced pod fails when its rootfs is mounted (`failed to prepare idmapped overlay: failed to create idmapped mount: unable to shift GID/UID or set mount attrs for …`); slow_chown does not help%s", o.ClaimedWhy, mount, v, also),
			fmt.Sprintf("put the snapshots on a filesystem with idmapped-mount support (ext4, xfs, btrfs; not NFS, FUSE, or tmpfs before %s): set root_path under [plugins.'%s'] (or containerd's root) to a directory there, restart containerd and pull the images again", rules.KernelTmpfsIdmap, cdconfig.PluginOverlayfs))
	case facts.RemapRefused:
		fix := slowChownRemedy
		if res.Ran && res.OK && o.TmpProbe != nil {
			fix = fmt.Sprintf("containerd probes in its TMPDIR %s, where it fails, while the snapshots' filesystem works: set Environment=TMPDIR=<a directory on the filesystem of %s> in containerd's unit, or %s", o.TmpDir, o.Root, slowChownRemedy)
		}
		f.list = append(f.list, finding{fail: true, slowFixes: true, remedy: fix,
			msg: fmt.Sprintf("%s, and %s: containerd %s refuses user-namespaced pods with `snapshotter \"overlayfs\" doesn't support idmap mounts on this host, configure `slow_chown` to allow a slower and expensive fallback` (%s)", o.ClaimedWhy, slowSet, v, mount)})
	case facts.RemapChown:
		f.Warn(fmt.Sprintf("%s; slow_chown = true (%s): containerd %s chowns a copy of every image snapshot for each user-namespaced pod (each pod has its own id range): disk space and pod start time grow with image size", o.ClaimedWhy, slowFrom, v),
			fmt.Sprintf("to avoid the copies, boot a kernel ≥%s with the snapshots on a filesystem with idmapped mounts (then containerd claims remap-ids and slow_chown is unused)", rules.KernelOverlayIdmap))
	default:
		f.Warn(fmt.Sprintf("cannot tell whether containerd %s idmaps image layers here: %s; %s", v, o.ClaimedWhy, mount),
			"run `usernsctl check` as root on the live host so that the probes run")
	}
	return "", ev
}

// slowChownRemedy turns on containerd's copy fallback.
var slowChownRemedy = "`usernsctl apply --target containerd --slow-chown on` (writes slow_chown = true to a drop-in: every image is then chowned per pod, costing disk space and pod start time), or boot a kernel ≥" + rules.KernelOverlayIdmap.Value + " with the snapshots on a filesystem with idmapped mounts"

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
