package runtime

import (
	"context"
	"fmt"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
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
	case !env.KubeAtLeast(rules.KubeletUserNSMin.Value):
		return r(checks.Failf(fmt.Sprintf("upgrade the cluster to Kubernetes %s or later (user namespaces on by default)", rules.KubeletUserNSDefaultOn),
			"%s has no user namespace support for pods (hostUsers: false arrived in %s)", src, rules.KubeletUserNSMin))
	case !env.KubeAtLeast(rules.KubeletUserNSDefaultOn.Value):
		return r(gateWarning(env, src))
	case !env.KubeAtLeast(rules.KubeletUserNSGA.Value):
		return r(checks.Passf("%s: user namespaces are beta and on by default (the API server's UserNamespacesSupport too, unless it is turned off there: then it drops hostUsers and pods run in the host user namespace)", src))
	}
	return r(checks.Passf("%s: user namespaces are GA", src))
}

// gateWarning is the finding for Kubernetes releases where user namespaces
// need a feature gate, off by default, on both the API server and the
// kubelet. The kubelet's side can be read here (kubelet.config judges it
// in full); the API server's cannot, and with it off the API server drops
// hostUsers silently (pkg/api/pod/util.go dropDisabledFields): pods run in
// the host user namespace. So the warning stays and names the side still
// to do.
func gateWarning(env *checks.Env, src string) checks.Result {
	gate, maturity := "UserNamespacesSupport", "beta and off by default"
	switch {
	case !env.KubeAtLeast(rules.KubeletUserNSStateful.Value):
		gate, maturity = "UserNamespacesStatelessPodsSupport", "alpha and stateless-only"
	case !env.KubeAtLeast(rules.KubeletGateRenamed.Value):
		gate, maturity = "UserNamespacesStatelessPodsSupport", "alpha"
	case !env.KubeAtLeast(rules.KubeletUserNSBeta.Value):
		maturity = "alpha"
	}
	msg := fmt.Sprintf("%s: user namespaces are %s (feature gate %s)", src, maturity, gate)
	dropped := "with the API server's gate off, it drops hostUsers from every pod it admits, silently: the pods run in the host user namespace"
	if k := facts.KubeletConfigOf(env); k.Err == nil {
		if on, set := k.GateSet(gate); set && on {
			return checks.Warnf(
				fmt.Sprintf("enable %s on the API server too: add %s=true to kube-apiserver's --feature-gates (kubeadm: the command in /etc/kubernetes/manifests/kube-apiserver.yaml on each control-plane node), or upgrade to %s+", gate, gate, rules.KubeletUserNSDefaultOn),
				"%s; the kubelet has it on (%s), the API server must have it on too, and that cannot be seen from this node: %s", msg, k.GateFrom[gate], dropped).
				With("kubelet_gate", gate).With("kubelet_gate_from", k.GateFrom[gate])
		}
	}
	return checks.Warnf(fmt.Sprintf("enable the %s feature gate on the API server and kubelet, or upgrade to %s+ (see kubelet.config for the kubelet's side)", gate, rules.KubeletUserNSDefaultOn), "%s; %s", msg, dropped)
}
