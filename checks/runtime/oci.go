package runtime

import (
	"context"
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
)

func checkRunc(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Runc)
	if env.Target == checks.Docker {
		return checkDockerRunc(p, env)
	}
	used, dflt, via, known := usedRuntimes(ctx, env, versions.Runc)
	switch {
	case !known:
		if !p.Installed {
			return checks.Skipf("runc is not installed, and the CRI handlers cannot be read (containerd.config or runtime.containerd reports why)").With("installed", false)
		}
		return judgeOCI(ctx, env, []*ociRuntime{ociRuntimeOf(ctx, env, versions.Runc)}, map[string]bool{versions.Runc: true}, nil)
	case len(used) == 0:
		return checks.Skipf("no CRI runtime handler runs runc (%s): an installed runc is not in the pods' path", handlerSummary(ctx, env)).With("installed", p.Installed)
	}
	return judgeOCI(ctx, env, used, dflt, via)
}

func checkCrun(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Crun)
	switch env.Target {
	case checks.Docker:
		return checkDockerCrun(p)
	case checks.Containerd:
		return checks.Skipf("`ctr run` runs runc unless --runtime names another: crun is not in the containers' path").With("installed", p.Installed)
	}
	used, dflt, via, known := usedRuntimes(ctx, env, versions.Crun)
	switch {
	case !known && !p.Installed:
		return checks.Skipf("crun is not installed").With("installed", false)
	case !known:
		if _, crio := facts.OtherCRI(env, versions.Containerd); crio {
			return judgeOCI(ctx, env, []*ociRuntime{ociRuntimeOf(ctx, env, versions.Crun)}, map[string]bool{}, nil)
		}
		return checks.Skipf("crun %s is installed, but which runtime the node's CRI runs cannot be told here (CRI-O, or a containerd config that does not load)", p.Version).With("installed", true)
	case len(used) == 0:
		return checks.Skipf("no CRI runtime handler runs crun (%s): an installed crun is not in the pods' path", handlerSummary(ctx, env)).With("installed", p.Installed)
	}
	return judgeOCI(ctx, env, used, dflt, via)
}

// handlerSummary lists the handlers and their runtimes: `"runc" (runc)`.
func handlerSummary(ctx context.Context, env *checks.Env) string {
	cri := facts.CRIOf(ctx, env)
	if cri == nil {
		return "no handlers"
	}
	var parts []string
	for _, h := range cri.Handlers {
		if h.Type != cdconfig.RuncShim {
			parts = append(parts, fmt.Sprintf("%q runs %s", h.Name, typeName(h)))
			continue
		}
		parts = append(parts, fmt.Sprintf("%q runs %s", h.Name, h.OCIBinary()))
	}
	return "handlers: " + strings.Join(parts, ", ")
}

// checkDockerRunc is runtime.runc for dockerd, which runs runc through
// its containerd with the remapped root and chowned layers.
func checkDockerRunc(p facts.Program, env *checks.Env) checks.Result {
	switch {
	case !p.Installed:
		return checks.Failf("install runc (Debian/Ubuntu: `apt-get install runc`)", "runc is not installed: dockerd's containerd cannot start containers").With("installed", false)
	case !p.Known():
		return unknown(p)
	case p.Version.Core.Core().String() == rules.RuncIdmap.Value:
		return found(p, checks.Failf(fmt.Sprintf("upgrade runc to %s or later", rules.RuncUsernsFixed),
			"runc %s has user-namespace regressions fixed in %s", p.Version, rules.RuncUsernsFixed))
	}
	return found(p, checks.Passf("runc %s supports user namespaces, all dockerd's userns-remap needs from it", p.Version))
}

// judgeOCI judges the versions of the runtimes the containers run: the
// default handler's fully, the others' as warnings naming their handlers.
func judgeOCI(ctx context.Context, env *checks.Env, used []*ociRuntime, dflt map[string]bool, via map[string][]string) checks.Result {
	cv := facts.VersionOf(ctx, env, versions.Containerd)
	idmap := env.Target == checks.Kubernetes && (!cv.Known() || cv.Version.AtLeast(rules.ContainerdIdmap.Value))
	// Behind CRI-O the runtime table (crio.conf) is not read here: an
	// installed runtime may be the one it runs, so its faults warn, and
	// containerd's idmap requirement does not apply.
	_, crio := facts.OtherCRI(env, versions.Containerd)
	daemon := "containerd"
	if crio {
		// From 1.30 CRI-O marks a handler as supporting user namespaces
		// only when its runtime advertises idmapped mounts.
		pv := facts.VersionOf(ctx, env, versions.Crio)
		idmap = (!pv.Known() || pv.Version.AtLeast(rules.CrioRuntimeHandlers.Value)) &&
			(env.Kube == nil || env.KubeAtLeast(rules.KubeletHandlerUserns.Value))
		daemon = "CRI-O"
	}
	var f checks.Findings
	var ok []string
	ev := map[string]any{}
	for _, o := range used {
		who := "the default handler"
		if env.Target == checks.Containerd {
			who = "`ctr run`"
		}
		if len(via[o.bin]) > 0 {
			who = "handler " + quoteList(via[o.bin])
		}
		if crio {
			who = "CRI-O, if its crio.conf runtimes name it"
		}
		add := f.Fail
		if !dflt[o.bin] || crio {
			add = f.Warn
		}
		ev[o.bin] = map[string]any{"version": o.prog.Version.Raw, "installed": o.prog.Installed, "default": dflt[o.bin], "handlers": via[o.bin]}
		since := idmapSince[o.kind]
		fix := fmt.Sprintf("upgrade %s to runc %s or later, then restart %s (it reads the runtime's features at start)", o.bin, rules.RuncUsernsFixed, daemon)
		if o.kind == versions.Crun {
			fix = fmt.Sprintf("upgrade %s to crun %s or later, or point the handler's BinaryName at runc %s+, then restart containerd (it reads the runtime's features at start)", o.bin, since, rules.RuncUsernsFixed)
			if crio {
				fix = fmt.Sprintf("upgrade %s to crun %s or later, then restart CRI-O", o.bin, since)
			}
		}
		switch {
		case !o.prog.Installed:
			add(fmt.Sprintf("%s is not installed, but %s runs it: its containers cannot start", o.bin, who), fmt.Sprintf("install %s (runc %s+ or crun %s+), then restart %s", o.bin, rules.RuncUsernsFixed, rules.CrunIdmap, daemon))
		case !o.prog.Known():
			f.Warn(fmt.Sprintf("%s (run by %s) is installed but its version could not be read: %v", o.bin, who, o.prog.Err), fmt.Sprintf("run `%s --version` by hand and check it against docs/checks.md", o.bin))
		case o.kind == versions.Runc && o.prog.Version.Core.Core().String() == rules.RuncIdmap.Value:
			add(fmt.Sprintf("%s has user-namespace regressions fixed in %s (run by %s)", o.label(), rules.RuncUsernsFixed, who), fmt.Sprintf("upgrade runc to %s or later", rules.RuncUsernsFixed))
		case !o.prog.Version.AtLeast(since.Value) && idmap:
			if crio {
				add(fmt.Sprintf("%s is older than %s (run by %s): it advertises no idmapped mounts, so %s reports its handler without user namespace support and the kubelet refuses every hostUsers: false pod on it", o.label(), since, who, needer(ctx, env, cv)), fix)
				break
			}
			add(fmt.Sprintf("%s is older than %s (run by %s): it cannot make idmapped mounts, which containerd %s requires for every hostUsers: false pod (runtime.features has what containerd and the kubelet answer)", o.label(), since, who, orUnknownVersion(cv)), fix)
		case !o.prog.Version.AtLeast(since.Value):
			ok = append(ok, fmt.Sprintf("%s (run by %s) creates user namespaces, all %s needs from it; idmapped mounts need %s %s", o.label(), who, needer(ctx, env, cv), o.kind, since))
		default:
			ok = append(ok, fmt.Sprintf("%s (run by %s) supports user namespaces and idmapped mounts", o.label(), who))
		}
	}
	r := checks.Result{}.With("runtimes", ev)
	if len(used) == 1 && used[0].prog.Known() {
		r = r.With("version", used[0].prog.Version.Raw).With("installed", true)
	}
	return f.Result(r, strings.Join(ok, "; "))
}

func needer(ctx context.Context, env *checks.Env, cv facts.Program) string {
	if _, crio := facts.OtherCRI(env, versions.Containerd); crio {
		if p := facts.VersionOf(ctx, env, versions.Crio); p.Known() {
			return "CRI-O " + p.Version.Raw
		}
		return "CRI-O"
	}
	switch {
	case env.Target == checks.Containerd:
		return "`ctr run --uidmap`"
	case cv.Known():
		return "containerd " + cv.Version.Raw
	}
	return string(env.Target)
}

func orUnknownVersion(p facts.Program) string {
	if p.Known() {
		return p.Version.Raw
	}
	return "(version unknown: ≥" + rules.ContainerdIdmap.Value + " assumed)"
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}
