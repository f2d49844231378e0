package runtime

import (
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// For 1.25–1.32 the warning names what is left to do: the API server
// alone when the kubelet's config already turns the version's gate on.
func TestKubeletFeatureGate(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	config := func(gates string) map[string]string {
		return map[string]string{cfg: "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfeatureGates:\n" + gates}
	}
	for _, tc := range []struct {
		kube      string
		files     map[string]string
		gate      string
		kubeletOn bool
	}{
		{"1.26", config("  UserNamespacesStatelessPodsSupport: true\n"), "UserNamespacesStatelessPodsSupport", true},
		{"1.27", config("  UserNamespacesStatelessPodsSupport: true\n"), "UserNamespacesStatelessPodsSupport", true},
		{"1.29", config("  UserNamespacesSupport: true\n"), "UserNamespacesSupport", true},
		{"1.31", config("  Other: false\n  UserNamespacesSupport: true\n"), "UserNamespacesSupport", true},
		{"1.31", nil, "UserNamespacesSupport", false},
		{"1.31", config("  UserNamespacesSupport: false\n"), "UserNamespacesSupport", false},
		// 1.27 still calls it UserNamespacesStatelessPodsSupport: the new name does not count.
		{"1.27", config("  UserNamespacesSupport: true\n"), "UserNamespacesStatelessPodsSupport", false},
		{"1.31", map[string]string{cfg: "featureGates: [\n"}, "UserNamespacesSupport", false},
	} {
		env := checkstest.Kube(t, checkstest.Env(t, checks.Kubernetes, tc.files, "", nil), tc.kube)
		r := checkstest.Run(t, Checkers(), "runtime.kubelet", env)
		if !tc.kubeletOn {
			checkstest.Expect(t, r, checks.Warn, "(feature gate "+tc.gate+")", "enable the "+tc.gate+" feature gate on the API server and kubelet")
			if strings.Contains(r.Message, "the kubelet has it on") {
				t.Errorf("%s %v: %s", tc.kube, tc.files, r.Message)
			}
			continue
		}
		checkstest.Expect(t, r, checks.Warn, "the kubelet has it on ("+cfg+" line ", "API server must have it on too")
		if !strings.HasPrefix(r.Remedy, "enable "+tc.gate+" on the API server too: add "+tc.gate+"=true to kube-apiserver's --feature-gates") ||
			strings.Contains(r.Remedy, "kubelet") {
			t.Errorf("%s: remedy must name only the API server: %s", tc.kube, r.Remedy)
		}
		if r.Evidence["kubelet_gate"] != tc.gate {
			t.Errorf("%s: evidence %v", tc.kube, r.Evidence)
		}
	}
}

// An old crun blocks user-namespaced pods only when containerd runs it:
// installed beside containerd's runc it is a warning (e2e finding F1).
