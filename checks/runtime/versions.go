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
	"github.com/usernsctl/usernsctl/rules"
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
			Doc: fmt.Sprintf("containerd is new enough for the target: below %s it ignores hostUsers: false (pods run in the host user namespace) and, like every release before %s, reports no runtime handlers, so a kubelet ≥%s refuses such pods; %s+ refuses the idmapped mounts a kubelet ≥%s asks for (the first %s release drops them); %s idmaps.",
				rules.ContainerdCRIUserns, rules.ContainerdIdmap, rules.KubeletHandlerUserns, rules.ContainerdCRIMountIdmapRefused, rules.KubeletUserNSStateful, rules.ContainerdCRIUserns, rules.ContainerdIdmap),
			Targets: []checks.Target{checks.Containerd, checks.Kubernetes},
		}, checkContainerd),
		checks.New(checks.Info{
			ID: "runtime.crio", Title: "CRI-O version",
			Doc:     "CRI-O, when it is the node's runtime, is ≥1.25.",
			Targets: []checks.Target{checks.Kubernetes},
		}, checkCrio),
		checks.New(checks.Info{
			ID: "runtime.runc", Title: "runc version",
			Doc:     fmt.Sprintf("Every runc the node's containers run (the CRI handlers' for Kubernetes, `ctr`'s runc for containerd, dockerd's) is not %s (user-namespace regressions) and, where containerd ≥%s gives it idmapped mounts (Kubernetes), is ≥%s; an installed runc no handler runs is not judged.", rules.RuncIdmap, rules.ContainerdIdmap, rules.RuncIdmap),
			Targets: []checks.Target{checks.Docker, checks.Containerd, checks.Kubernetes},
		}, checkRunc),
		checks.New(checks.Info{
			ID: "runtime.crun", Title: "crun version",
			Doc:     fmt.Sprintf("Every crun a CRI handler runs (BinaryName) is ≥%s where containerd ≥%s gives it idmapped mounts; an installed crun no handler runs is not judged.", rules.CrunIdmap, rules.ContainerdIdmap),
			Targets: []checks.Target{checks.Docker, checks.Containerd, checks.Kubernetes},
		}, checkCrun),
		checks.New(checks.Info{
			ID: "runtime.kubelet", Title: "Kubernetes version",
			Doc:     fmt.Sprintf("The Kubernetes version planned for supports user namespaces (≥%s) and at which maturity.", rules.KubeletUserNSMin),
			Targets: []checks.Target{checks.Kubernetes},
		}, checkKubelet),
		FeaturesChecker(),
		OOMScoreAdjChecker(),
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
	case !p.Version.AtLeast(rules.DockerValidate.Value):
		return found(p, checks.Passf("dockerd %s supports userns-remap; it is older than %s, so `dockerd --validate` cannot check daemon.json before a restart", p.Version, rules.DockerValidate))
	}
	return found(p, checks.Passf("dockerd %s supports userns-remap and `dockerd --validate`", p.Version))
}

func checkContainerd(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Containerd)
	kube := env.Target == checks.Kubernetes
	if why, other := facts.OtherCRI(env, versions.Containerd); other {
		return checks.Skipf("%s", why).With("installed", p.Installed)
	}
	if !p.Installed {
		if r := endpointWithoutRuntime(env, versions.Containerd, "containerd"); r != nil {
			return *r
		}
		if kube && facts.VersionOf(ctx, env, versions.Crio).Installed {
			return checks.Skipf("containerd is not installed; CRI-O is the runtime here").With("installed", false)
		}
		return checks.Failf(fmt.Sprintf("install containerd ≥%s (or CRI-O for Kubernetes)", rules.ContainerdIdmap),
			"containerd is not installed").With("installed", false)
	}
	if !p.Known() {
		return unknown(p)
	}
	v := p.Version
	upgrade := fmt.Sprintf("upgrade containerd to %s or later (then restart it and the kubelet)", rules.ContainerdIdmap)
	refused := fmt.Sprintf("the kubelet (Kubernetes %s) refuses every hostUsers: false pod before it starts (`can't set `spec.hostUsers: false`, runtime does not support user namespaces`): containerd %s reports no runtime handlers in its CRI status, and a kubelet from %s takes that as no user namespace support", env.Kube, v, rules.KubeletHandlerUserns)
	switch {
	case !v.AtLeast(rules.ContainerdCRIUserns.Value) && kube && env.KubeAtLeast(rules.KubeletHandlerUserns.Value):
		return found(p, checks.Failf(upgrade, "%s", refused))
	case !v.AtLeast(rules.ContainerdCRIUserns.Value) && kube:
		return found(p, checks.Failf(upgrade,
			"containerd %s silently ignores hostUsers: false: with Kubernetes %s the pods run in the host user namespace, as host root", v, env.Kube))
	case !v.AtLeast(rules.ContainerdCRIUserns.Value):
		return found(p, checks.Warnf(upgrade,
			"containerd %s has no user namespace support in its CRI; `ctr run --uidmap` works with a chowned copy of every image snapshot per mapping (disk and start-up cost)", v))
	case !v.AtLeast(rules.ContainerdIdmap.Value) && kube && env.KubeAtLeast(rules.KubeletHandlerUserns.Value):
		return found(p, checks.Failf(upgrade, "%s", refused))
	case !v.AtLeast(rules.ContainerdIdmap.Value) && kube && env.KubeAtLeast(rules.KubeletUserNSStateful.Value) && v.AtLeast(rules.ContainerdCRIMountIdmapRefused.Value):
		return found(p, checks.Failf(upgrade,
			"containerd %s refuses the containers of every hostUsers: false pod: Kubernetes %s gives their mounts id mappings (from %s), and containerd %s answers `idmap mounts not yet supported, but they were requested for: …` at CreateContainer", v, env.Kube, rules.KubeletUserNSStateful, v))
	case !v.AtLeast(rules.ContainerdIdmap.Value) && kube && env.KubeAtLeast(rules.KubeletUserNSStateful.Value):
		return found(p, checks.Warnf(upgrade,
			"containerd %s silently drops the id mappings Kubernetes %s gives the mounts of hostUsers: false pods (%s refuses them): their volumes are mounted without idmap, so their files show up owned by nobody inside the pod; the image is chowned per pod", v, env.Kube, rules.ContainerdCRIMountIdmapRefused))
	case !v.AtLeast(rules.ContainerdIdmap.Value):
		return found(p, checks.Warnf(fmt.Sprintf("upgrade to containerd %s+ for idmapped layers; meanwhile enable overlay metacopy (`usernsctl apply --target containerd --metacopy on`)", rules.ContainerdIdmap),
			"containerd %s supports user namespaces by chowning a copy of every image snapshot per mapping (disk and start-up cost)", v))
	}
	return found(p, checks.Passf("containerd %s supports user namespaces with idmapped mounts", v))
}

func checkCrio(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Crio)
	if why, other := facts.OtherCRI(env, versions.Crio); other && p.Installed {
		return checks.Skipf("%s", why).With("installed", true)
	}
	switch {
	case !p.Installed:
		if r := endpointWithoutRuntime(env, versions.Crio, "CRI-O"); r != nil {
			return *r
		}
		return checks.Skipf("CRI-O is not installed").With("installed", false)
	case !p.Known():
		return unknown(p)
	case !p.Version.AtLeast(rules.CrioUserns.Value):
		return found(p, checks.Failf(fmt.Sprintf("upgrade CRI-O to %s or later", rules.CrioUserns), "CRI-O %s has no support for user-namespaced pods (needs %s)", p.Version, rules.CrioUserns))
	case !p.Version.AtLeast(rules.CrioRuntimeHandlers.Value) && (env.Kube == nil || env.KubeAtLeast(rules.KubeletHandlerUserns.Value)):
		return found(p, checks.Failf(fmt.Sprintf("upgrade CRI-O to %s or later (then restart it and the kubelet)", rules.CrioRuntimeHandlers),
			"the kubelet (Kubernetes %s) refuses every hostUsers: false pod before it starts (`can't set `spec.hostUsers: false`, runtime does not support user namespaces`): CRI-O %s reports no runtime handlers in its CRI status, and a kubelet from %s takes that as no user namespace support",
			kubeOrAssumed(env), p.Version, rules.KubeletHandlerUserns))
	case !p.Version.AtLeast(rules.CrioRuntimeHandlers.Value):
		return found(p, checks.Passf("CRI-O %s supports user-namespaced pods (a kubelet from %s also needs CRI-O %s, which reports its runtime handlers)", p.Version, rules.KubeletHandlerUserns, rules.CrioRuntimeHandlers))
	}
	return found(p, checks.Passf("CRI-O %s supports user-namespaced pods; it reports a runtime handler as supporting them when the handler's OCI runtime advertises idmapped mounts (runtime.runc, runtime.crun)", p.Version))
}

// checkDockerCrun is runtime.crun for dockerd: userns-remap asks nothing
// of the OCI runtime but the user namespace, which every crun creates.
func checkDockerCrun(p facts.Program) checks.Result {
	if !p.Installed {
		return checks.Skipf("crun is not installed").With("installed", false)
	}
	v := p.Version
	if !p.Known() {
		return unknown(p)
	}
	return found(p, checks.Passf("crun %s supports user namespaces for this target", v))
}

// endpointWithoutRuntime fails a runtime that the kubelet's endpoint names
// explicitly but that is not installed: the kubelet checks the CRI
// connection at start and exits (`validate service connection: validate
// CRI v1 runtime API for endpoint …`: pkg/kubelet/kubelet.go
// PreInitRuntimeService → k8s.io/cri-client NewRemoteRuntimeService's
// Version call, v1.34.4).
func endpointWithoutRuntime(env *checks.Env, runtime, name string) *checks.Result {
	c := facts.KubeletCRIOf(env)
	if env.Target != checks.Kubernetes || c.Runtime != runtime {
		return nil
	}
	r := checks.Failf(fmt.Sprintf("install %s, or point the kubelet's --container-runtime-endpoint (%s) at the runtime this node runs", name, c.From),
		"the kubelet talks to %s (%s, %s), but %s is not installed: the kubelet cannot reach its runtime and exits at start (`validate service connection: validate CRI v1 runtime API for endpoint %q`)", name, c.Endpoint, c.From, name, c.Endpoint).With("installed", false)
	return &r
}

// kubeOrAssumed names the Kubernetes version, or what is assumed for it.
func kubeOrAssumed(env *checks.Env) string {
	if env.Kube == nil {
		return "version unknown: " + rules.KubeletHandlerUserns.Value + " or later assumed"
	}
	return env.Kube.String()
}
