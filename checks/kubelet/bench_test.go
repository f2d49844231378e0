package kubelet

import (
	"context"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
)

// BenchmarkKubeletArea runs kubelet.config, facts included, on a kubeadm
// node snapshot (unit, 10-kubeadm.conf, flag files, config).
func BenchmarkKubeletArea(b *testing.B) {
	const cfg = "/var/lib/kubelet/config.yaml"
	files := with(kubeadm(cfg), cfg, header+"maxPods: 110\nfeatureGates:\n  UserNamespacesSupport: true\n",
		defaultEnv, "KUBELET_EXTRA_ARGS=--node-ip=10.0.0.5\n")
	proto := newEnv(b, "1.33", files)
	ctx := context.Background()
	for b.Loop() {
		env := &checks.Env{Host: proto.Host, Run: proto.Run, Probes: proto.Probes, Target: checks.Kubernetes, Kube: proto.Kube}
		if r := Checkers()[0].Check(ctx, env); r.Status != checks.Pass {
			b.Fatalf("%s %s", r.Status, r.Message)
		}
	}
}
