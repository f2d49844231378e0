package runtime

import (
	"context"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

func TestRuncGate(t *testing.T) {
	runc := func(v string) map[string]any {
		return map[string]any{"runc --version": "runc version " + v + "\nspec: 1.0.2-dev\n"}
	}
	for _, tc := range []struct {
		name   string
		target checks.Target
		kube   string
		cmds   map[string]any
		status checks.Status
		want   string
	}{
		// dockerd's userns-remap needs nothing from runc beyond the namespace.
		{"docker, runc 1.0", checks.Docker, "", runc("1.0.0-rc93"), checks.Pass, "all dockerd's userns-remap needs from it"},
		{"containerd, runc 1.0", checks.Containerd, "", runc("1.0.0-rc93"), checks.Warn, "idmapped mounts need runc 1.2"},
		{"kubernetes 1.30, runc 1.1", checks.Kubernetes, "1.30", runc("1.1.12"), checks.Fail,
			"runc 1.1.12 is older than 1.2: Kubernetes 1.30.0 needs idmapped mounts; an older runtime silently drops idmap mount requests"},
		{"kubernetes 1.26, runc 1.0", checks.Kubernetes, "1.26", runc("1.0.3"), checks.Fail, "runc 1.0.3 is older than 1.1: Kubernetes 1.26.0 needs it"},
		{"runc 1.2.0 anywhere", checks.Docker, "", runc("1.2.0"), checks.Fail, "regressions fixed in 1.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := featuresEnv(t, tc.target, tc.kube, tc.cmds)
			r := checkRunc(context.Background(), env)
			if r.Status != tc.status || !strings.Contains(r.Message, tc.want) {
				t.Fatalf("%s: %s, want %s containing %q", tc.name, r.Status, tc.status, tc.want)
			}
			if r.Status != checks.Pass && r.Remedy == "" {
				t.Error("no remedy")
			}
		})
	}
}

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
func TestCrunOnlyFailsWhenContainerdRunsIt(t *testing.T) {
	cmds := `{"containerd --version": "containerd github.com/containerd/containerd/v2 v2.1.4 abc\n",
		"runc --version": "runc version 1.2.6\n", "crun --version": "crun version 1.8.1\n"}`
	plain := map[string]string{"/etc/containerd/config.toml": "version = 3\n"}
	env := checkstest.Kube(t, checkstest.Env(t, checks.Kubernetes, plain, cmds, nil), "1.33")
	r := checkstest.Run(t, Checkers(), "runtime.crun", env)
	checkstest.Expect(t, r, checks.Warn, "crun 1.8.1 is older than 1.9", "no CRI runtime handler of containerd names crun", "pods run with runc")

	withCrun := map[string]string{"/etc/containerd/config.toml": `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun]
  runtime_type = 'io.containerd.runc.v2'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]
    BinaryName = '/usr/bin/crun'
`}
	env = checkstest.Kube(t, checkstest.Env(t, checks.Kubernetes, withCrun, cmds, nil), "1.33")
	r = checkstest.Run(t, Checkers(), "runtime.crun", env)
	checkstest.Expect(t, r, checks.Fail, "crun 1.8.1 is older than 1.9", `handler "crun" (BinaryName /usr/bin/crun`)
}
