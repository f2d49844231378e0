package runtime

import (
	"context"
	"fmt"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/versions"
)

func checkKubelet(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Kubelet)
	r := func(res checks.Result) checks.Result {
		res = res.With("planned_version", env.Kube.String()).With("source", env.KubeSource)
		if p.Known() {
			res = res.With("version", p.Version.Raw)
		}
		return res
	}
	k := env.Kube
	src := fmt.Sprintf("Kubernetes %s (%s)", k, env.KubeSource)
	switch {
	case p.Installed && !p.Known():
		return unknown(p)
	case !env.KubeAtLeast("1.25"):
		return r(checks.Failf("upgrade the cluster to Kubernetes 1.33 or later (user namespaces on by default)",
			"%s has no user namespace support for pods (hostUsers: false arrived in 1.25)", src))
	case !env.KubeAtLeast("1.33"):
		return r(gateWarning(env, src))
	case !env.KubeAtLeast("1.36"):
		return r(checks.Passf("%s: user namespaces are beta and on by default", src))
	}
	return r(checks.Passf("%s: user namespaces are GA", src))
}

// gateWarning is the finding for Kubernetes 1.25–1.32, where user
// namespaces need a feature gate, off by default, on both the API server
// and the kubelet. The kubelet's side can be read here (kubelet.config
// judges it in full); the API server's cannot, so the warning stays and
// names only the side still to do.
func gateWarning(env *checks.Env, src string) checks.Result {
	gate, maturity := "UserNamespacesSupport", "beta and off by default"
	switch {
	case !env.KubeAtLeast("1.27"):
		gate, maturity = "UserNamespacesStatelessPodsSupport", "alpha and stateless-only"
	case !env.KubeAtLeast("1.28"): // renamed in 1.28
		gate, maturity = "UserNamespacesStatelessPodsSupport", "alpha"
	case !env.KubeAtLeast("1.30"):
		maturity = "alpha"
	}
	msg := fmt.Sprintf("%s: user namespaces are %s (feature gate %s)", src, maturity, gate)
	if k := facts.KubeletConfigOf(env); k.Err == nil {
		if on, set := k.GateSet(gate); set && on {
			return checks.Warnf(
				fmt.Sprintf("enable %s on the API server too: add %s=true to kube-apiserver's --feature-gates (kubeadm: the command in /etc/kubernetes/manifests/kube-apiserver.yaml on each control-plane node), or upgrade to 1.33+", gate, gate),
				"%s; the kubelet has it on (%s), the API server must have it on too, and that cannot be seen from this node", msg, k.GateFrom[gate]).
				With("kubelet_gate", gate).With("kubelet_gate_from", k.GateFrom[gate])
		}
	}
	return checks.Warnf(fmt.Sprintf("enable the %s feature gate on the API server and kubelet, or upgrade to 1.33+ (see kubelet.config for the kubelet's side)", gate), "%s", msg)
}
