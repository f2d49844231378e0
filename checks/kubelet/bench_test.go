package kubelet

import (
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// BenchmarkKubeletArea runs kubelet.config, facts included, on a kubeadm
// node snapshot (unit, 10-kubeadm.conf, flag files, config).
func BenchmarkKubeletArea(b *testing.B) {
	const cfg = "/var/lib/kubelet/config.yaml"
	files := with(kubeadm(cfg), cfg, header+"maxPods: 110\nfeatureGates:\n  UserNamespacesSupport: true\n",
		defaultEnv, "KUBELET_EXTRA_ARGS=--node-ip=10.0.0.5\n")
	checkstest.Bench(b, newEnv(b, "1.33", files), Checkers(), checks.Pass)
}
