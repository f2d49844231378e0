package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-version"

	"github.com/usernsctl/usernsctl/internal/versions"
)

// Target is what the operator is about to enable.
type Target string

// Targets.
const (
	Docker     Target = "docker"
	Containerd Target = "containerd"
	Kubernetes Target = "kubernetes"
	Rootless   Target = "rootless"
)

// AllTargets in the order they are documented.
var AllTargets = []Target{Docker, Containerd, Kubernetes, Rootless}

// ParseTarget validates a --target value.
func ParseTarget(s string) (Target, error) {
	for _, t := range AllTargets {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown target %q: want one of docker, containerd, kubernetes, rootless", s)
}

// ErrNoTarget means nothing tells which target to check for.
var ErrNoTarget = errors.New("no target given and none of kubelet, dockerd, containerd is installed: pass --target docker|containerd|kubernetes|rootless")

// Plan settles what the run is about: the target (flag, else detected from
// what is installed) and, for Kubernetes, the version planned for (flag,
// else `kubelet --version`).
func Plan(ctx context.Context, env *Env, target, kube string) error {
	if target != "" {
		t, err := ParseTarget(target)
		if err != nil {
			return err
		}
		env.Target, env.TargetSource = t, "--target"
	} else {
		// kubelet first: a Kubernetes node also has containerd, and often
		// dockerd, installed.
		switch {
		case env.Run.Installed(versions.Kubelet):
			env.Target, env.TargetSource = Kubernetes, "detected: kubelet is installed"
		case env.Run.Installed(versions.Dockerd):
			env.Target, env.TargetSource = Docker, "detected: dockerd is installed"
		case env.Run.Installed(versions.Containerd):
			env.Target, env.TargetSource = Containerd, "detected: containerd is installed"
		default:
			return ErrNoTarget
		}
	}
	if kube != "" {
		v, err := versions.Core(kube)
		if err != nil || len(v.Segments()) < 2 {
			return fmt.Errorf("--kubernetes-version %q: want MAJOR.MINOR such as 1.33", kube)
		}
		env.Kube, env.KubeSource = v, "--kubernetes-version"
	} else if env.Target == Kubernetes {
		// The runner is memoized: runtime.kubelet's own `kubelet
		// --version` (facts.VersionOf) does not run it again.
		if v, ok := kubeletVersion(ctx, env); ok {
			env.Kube, env.KubeSource = v, "kubelet --version"
		} else {
			env.Kube = version.Must(version.NewVersion(AssumedKube))
			env.KubeSource = "assumed: no kubelet and no --kubernetes-version"
		}
	}
	return nil
}

func kubeletVersion(ctx context.Context, env *Env) (*version.Version, bool) {
	out, err := env.Run.Run(ctx, versions.Kubelet, "--version")
	if err != nil {
		return nil, false
	}
	p, err := versions.FromOutput(versions.Kubelet, bytes.NewReader(out.Stdout))
	if err != nil || p.Core == nil {
		return nil, false
	}
	return p.Core, true
}

// AssumedKube is planned for when nothing names a Kubernetes version: the
// first release with user namespaces on by default, under the ≥1.27 rules
// (kernel 6.3, containerd 2.0, runc 1.2) that every supported release shares.
const AssumedKube = "1.33"

// KubeAtLeast reports whether the planned Kubernetes version is at least
// min; false when no version is planned (a non-Kubernetes target).
func (env *Env) KubeAtLeast(min string) bool {
	return versions.AtLeast(env.Kube, min)
}
