// Package runtime judges the container stack's versions (dockerd,
// containerd, CRI-O, runc, crun, kubelet) against what the target needs,
// and the OCI runtimes' declared features.
package runtime

import (
	"context"
	"fmt"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// Checkers returns the runtime area's checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "runtime.dockerd", Title: "dockerd version",
			Doc:     "dockerd is installed; its version decides what `--validate` and the containerd image store allow with userns-remap.",
			Targets: []checks.Target{checks.Docker},
		}, checkDockerd),
		checks.New(checks.Info{
			ID: "runtime.containerd", Title: "containerd version",
			Doc:     "containerd is new enough for the target: ≥1.7 for user-namespaced pods, ≥2.0 from Kubernetes 1.27; ≤1.6 silently ignores hostUsers: false.",
			Targets: []checks.Target{checks.Containerd, checks.Kubernetes},
		}, checkContainerd),
		checks.New(checks.Info{
			ID: "runtime.crio", Title: "CRI-O version",
			Doc:     "CRI-O, when it is the node's runtime, is ≥1.25.",
			Targets: []checks.Target{checks.Kubernetes},
		}, checkCrio),
		checks.New(checks.Info{
			ID: "runtime.runc", Title: "runc version",
			Doc:     "runc is new enough: ≥1.2 (not 1.2.0) for idmapped mounts from Kubernetes 1.27; ≥1.1 before.",
			Targets: []checks.Target{checks.Docker, checks.Containerd, checks.Kubernetes},
		}, checkRunc),
		checks.New(checks.Info{
			ID: "runtime.crun", Title: "crun version",
			Doc:     "crun, when installed, is new enough: ≥1.9 for idmapped mounts from Kubernetes 1.27; ≥1.4.3 before.",
			Targets: []checks.Target{checks.Docker, checks.Containerd, checks.Kubernetes},
		}, checkCrun),
		checks.New(checks.Info{
			ID: "runtime.kubelet", Title: "Kubernetes version",
			Doc:     "The Kubernetes version planned for supports user namespaces (≥1.25) and at which maturity.",
			Targets: []checks.Target{checks.Kubernetes},
		}, checkKubelet),
		FeaturesChecker(),
	}
}

// unknown reports an installed program whose version could not be read.
func unknown(p facts.Program) checks.Result {
	return checks.Warnf(fmt.Sprintf("run `%s --version` by hand and check it against docs/checks.md", p.Name),
		"%s is installed but its version could not be read: %v", p.Name, p.Err).With("installed", true)
}

func found(p facts.Program, r checks.Result) checks.Result {
	return r.With("version", p.Version.Raw).With("installed", true)
}

func checkDockerd(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Dockerd)
	switch {
	case !p.Installed:
		return checks.Failf("install Docker Engine (Debian/Ubuntu: `apt-get install docker.io`), then run this check again",
			"dockerd is not installed, so there is no Docker daemon to remap").With("installed", false)
	case !p.Known():
		return unknown(p)
	case !p.Version.AtLeast("23.0"):
		return found(p, checks.Passf("dockerd %s supports userns-remap; it is older than 23.0, so `dockerd --validate` cannot check daemon.json before a restart", p.Version))
	}
	return found(p, checks.Passf("dockerd %s supports userns-remap and `dockerd --validate`", p.Version))
}

func checkContainerd(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Containerd)
	kube := env.Target == checks.Kubernetes
	if !p.Installed {
		if kube && facts.VersionOf(ctx, env, versions.Crio).Installed {
			return checks.Skipf("containerd is not installed; CRI-O is the runtime here").With("installed", false)
		}
		return checks.Failf("install containerd ≥2.0 (or CRI-O ≥1.25 for Kubernetes)",
			"containerd is not installed").With("installed", false)
	}
	if !p.Known() {
		return unknown(p)
	}
	v := p.Version
	upgrade := "upgrade containerd to 2.0 or later (then restart it and the kubelet)"
	switch {
	case !v.AtLeast("1.7") && kube:
		return found(p, checks.Failf(upgrade,
			"containerd %s silently ignores hostUsers: false: pods would run in the host user namespace, as host root", v))
	case !v.AtLeast("1.7"):
		return found(p, checks.Failf(upgrade,
			"containerd %s has no user namespace support in its CRI; only `ctr run --uidmap` with chowned snapshots works", v))
	case !v.AtLeast("2.0") && kube && env.KubeAtLeast("1.27"):
		return found(p, checks.Failf(upgrade,
			"containerd %s cannot run user-namespaced pods for Kubernetes %s: from 1.27 they need idmapped mounts, which containerd supports from 2.0", v, env.Kube))
	case !v.AtLeast("2.0"):
		return found(p, checks.Warnf("upgrade to containerd 2.0+ for idmapped mounts; meanwhile enable overlay metacopy (`usernsctl apply --target containerd --metacopy on`)",
			"containerd %s supports user namespaces by chowning a copy of every image snapshot per mapping (disk and start-up cost)", v))
	}
	return found(p, checks.Passf("containerd %s supports user namespaces with idmapped mounts", v))
}

func checkCrio(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Crio)
	switch {
	case !p.Installed:
		return checks.Skipf("CRI-O is not installed").With("installed", false)
	case !p.Known():
		return unknown(p)
	case !p.Version.AtLeast("1.25"):
		return found(p, checks.Failf("upgrade CRI-O to 1.25 or later", "CRI-O %s has no support for user-namespaced pods (needs 1.25)", p.Version))
	}
	return found(p, checks.Passf("CRI-O %s supports user-namespaced pods", p.Version))
}

// ociGate is the minimum OCI runtime version for the target.
func ociGate(env *checks.Env, modern, legacy string) (min, why string) {
	if env.Target == checks.Kubernetes && env.KubeAtLeast("1.27") {
		return modern, fmt.Sprintf("Kubernetes %s needs idmapped mounts", env.Kube)
	}
	if env.Target == checks.Kubernetes {
		return legacy, fmt.Sprintf("Kubernetes %s needs it", env.Kube)
	}
	return legacy, "user namespaces need it"
}

func checkRunc(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Runc)
	if !p.Installed {
		if facts.VersionOf(ctx, env, versions.Crun).Installed {
			return checks.Skipf("runc is not installed; crun is").With("installed", false)
		}
		return checks.Failf("install runc (≥1.2.1) or crun (≥1.9)", "no OCI runtime found: neither runc nor crun is installed").With("installed", false)
	}
	if !p.Known() {
		return unknown(p)
	}
	v := p.Version
	if v.Core.Core().String() == "1.2.0" {
		return found(p, checks.Failf("upgrade runc to 1.2.1 or later",
			"runc %s has user-namespace regressions fixed in 1.2.1", v))
	}
	min, why := ociGate(env, "1.2", "1.1")
	if !v.AtLeast(min) {
		if env.Target == checks.Docker {
			// userns-remap chowns image layers; it asks nothing of runc but
			// the user namespace itself, which every runc release creates.
			return found(p, checks.Passf("runc %s supports user namespaces, all dockerd's userns-remap needs from it (idmapped mounts need 1.2)", v))
		}
		r := checks.Failf(fmt.Sprintf("upgrade runc to %s or later (1.2.1+ to be safe)", min),
			"runc %s is older than %s: %s; an older runtime silently drops idmap mount requests and volumes fill with files owned by per-pod host UIDs", v, min, why)
		if env.Target == checks.Docker || env.Target == checks.Containerd {
			r.Status = checks.Warn
			r.Message = fmt.Sprintf("runc %s is older than %s: user namespaces work, but idmapped mounts need runc 1.2", v, min)
		}
		return found(p, r)
	}
	if !v.AtLeast("1.2") {
		return found(p, checks.Passf("runc %s supports user namespaces (idmapped mounts need 1.2)", v))
	}
	return found(p, checks.Passf("runc %s supports user namespaces and idmapped mounts", v))
}

func checkCrun(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Crun)
	if !p.Installed {
		return checks.Skipf("crun is not installed").With("installed", false)
	}
	if !p.Known() {
		return unknown(p)
	}
	v := p.Version
	min, why := ociGate(env, "1.9", "1.4.3")
	if !v.AtLeast(min) {
		st := checks.Fail
		if env.Target != checks.Kubernetes {
			st = checks.Warn
		} else if used, where, known := crunUse(ctx, env); known && !used {
			// Installed but not in the pods' path: say so, do not block.
			return found(p, checks.Warnf(fmt.Sprintf("upgrade crun to %s or later before any runtime handler uses it, or remove it", min),
				"crun %s is older than %s, but %s: pods run with runc, so crun does not drop their idmap requests", v, min, where))
		} else if used {
			why += "; containerd runs it: " + where
		}
		return found(p, checks.Result{Status: st,
			Message: fmt.Sprintf("crun %s is older than %s: %s; an older runtime silently drops idmap mount requests", v, min, why),
			Remedy:  fmt.Sprintf("upgrade crun to %s or later, or make runc ≥1.2.1 the default runtime", min)})
	}
	return found(p, checks.Passf("crun %s supports user namespaces for this target", v))
}
