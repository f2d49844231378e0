package facts

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-version"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// Plan settles what the run is about: the target (flag, else detected from
// what is installed) and, for Kubernetes, the version planned for (flag,
// else `kubelet --version`).
func Plan(ctx context.Context, env *checks.Env, target, kube string) error {
	if target != "" {
		t, err := checks.ParseTarget(target)
		if err != nil {
			return err
		}
		env.Target, env.TargetSource = t, "--target"
	} else {
		// kubelet first: a Kubernetes node also has containerd, and often
		// dockerd, installed.
		switch {
		case env.Run.Installed(versions.Kubelet):
			env.Target, env.TargetSource = checks.Kubernetes, "detected: kubelet is installed"
		case env.Run.Installed(versions.Dockerd):
			env.Target, env.TargetSource = checks.Docker, "detected: dockerd is installed"
		case env.Run.Installed(versions.Containerd):
			env.Target, env.TargetSource = checks.Containerd, "detected: containerd is installed"
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
	} else if env.Target == checks.Kubernetes {
		if p := Version(ctx, env, versions.Kubelet); p.Known() {
			env.Kube, env.KubeSource = p.Version.Core, "kubelet --version"
		} else {
			env.Kube = version.Must(version.NewVersion(AssumedKube))
			env.KubeSource = "assumed: no kubelet and no --kubernetes-version"
		}
	}
	return nil
}

// AssumedKube is planned for when nothing names a Kubernetes version: the
// first release with user namespaces on by default, under the ≥1.27 rules
// (kernel 6.3, containerd 2.0, runc 1.2) that every supported release shares.
const AssumedKube = "1.33"

// KubeAtLeast reports whether the planned Kubernetes version is at least
// min; false when no version is planned (a non-Kubernetes target).
func KubeAtLeast(env *checks.Env, min string) bool {
	return versions.AtLeast(env.Kube, min)
}
