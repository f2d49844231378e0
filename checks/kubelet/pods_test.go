package kubelet

import (
	"fmt"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

func record(host, length uint64) string {
	return fmt.Sprintf(`{"uidMappings":[{"hostId":%d,"containerId":0,"length":%d}],"gidMappings":[{"hostId":%d,"containerId":0,"length":%d}]}`, host, length, host, length)
}

const (
	kubeletPW = "kubelet:x:990:990::/nonexistent:/usr/sbin/nologin\n"
	passwd    = "root:x:0:0:root:/root:/bin/bash\n"
	pod1      = "/var/lib/kubelet/pods/2b3c7d1e-0000-4000-8000-000000000001/userns"
	pod2      = "/var/lib/kubelet/pods/2b3c7d1e-0000-4000-8000-000000000002/userns"
)

// podsEnv is a node whose kubelet user has range (start:count) from
// getsubids, with the given files.
func podsEnv(t *testing.T, kube, start, count string, files map[string]string) *checks.Env {
	t.Helper()
	line := "0: kubelet " + start + " " + count + `\n`
	cmds := `{"kubelet --version": "Kubernetes v` + kube + `.1\n", "getsubids kubelet": "` + line + `", "getsubids -g kubelet": "` + line + `"}`
	if start == "" {
		cmds = `{"kubelet --version": "Kubernetes v` + kube + `.1\n"}`
	}
	if files["/etc/passwd"] == "" {
		files["/etc/passwd"] = passwd
		if start != "" {
			files["/etc/passwd"] += kubeletPW
		}
	}
	files["/etc/nsswitch.conf"] = "passwd: files\nsubid: sss\n" // getsubids answers, not the files
	return checkstest.Kube(t, checkstest.Env(t, checks.Kubernetes, files, cmds, nil), kube)
}

func TestPodMappings(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	for _, tc := range []struct {
		name         string
		kube         string
		start, count string
		files        map[string]string
		status       checks.Status
		want         []string
	}{
		{"no pods dir", "1.33", "16777216", "7208960", map[string]string{}, checks.Pass, []string{"no /var/lib/kubelet/pods"}},
		{"fit", "1.33", "16777216", "7208960", map[string]string{pod1: record(16777216, 65536), pod2: ""}, checks.Pass,
			[]string{"1 pod record in /var/lib/kubelet/pods fit the range the kubelet will use, 16777216-23986175, blocks of 65536"}},
		{"P1 out of range (1.33 text)", "1.33", "16777216", "7208960", map[string]string{pod1: record(2818048, 65536)}, checks.Fail,
			[]string{"`failed to create kubelet: create user namespace manager: record pod mappings: id 2818048 is out of range`", "rm -f " + pod1}},
		{"P1 out of range (1.35 text)", "1.35", "16777216", "7208960", map[string]string{pod1: record(2818048, 65536)}, checks.Fail,
			[]string{`record pod mappings for existing pod "2b3c7d1e-0000-4000-8000-000000000001": id 2818048 is out of range`}},
		{"P1 default range", "1.33", "", "", map[string]string{pod1: record(65536, 65536)}, checks.Pass, []string{"the default range 65536-4294967295"}},
		{"P2 idsPerPod changed", "1.35", "16777216", "14417920", map[string]string{pod1: record(16777216, 65536),
			cfg: header + "userNamespaces:\n  idsPerPod: 131072\n"}, checks.Fail,
			[]string{"wrong user namespace length 65536", "set userNamespaces.idsPerPod back"}},
		{"P2 1.34 ignores idsPerPod", "1.34", "16777216", "14417920", map[string]string{pod1: record(16777216, 65536),
			cfg: header + "userNamespaces:\n  idsPerPod: 131072\n"}, checks.Pass, nil},
		{"P3 offset", "1.33", "16777216", "7208960", map[string]string{pod1: record(16777216+4096, 65536)}, checks.Fail, []string{"wrong user namespace offset specified 16781312"}},
		{"P4 taken twice", "1.33", "16777216", "7208960", map[string]string{pod1: record(16777216, 65536), pod2: record(16777216, 65536)}, checks.Fail,
			[]string{`range picked for pod "2b3c7d1e-0000-4000-8000-000000000002" already taken`}},
		{"P5 not JSON", "1.33", "16777216", "7208960", map[string]string{pod1: "x"}, checks.Fail, []string{"invalid user namespace mappings file: invalid character 'x'"}},
		{"top block", "1.33", "", "", map[string]string{pod1: record(4294901760, 65536)}, checks.Fail, []string{"1 pod record on it", "never starts", "grep -E '2b3c7d1e-0000-4000-8000-000000000001'"}},
		{"gate off", "1.32", "16777216", "7208960", map[string]string{pod1: record(2818048, 65536)}, checks.Skip, []string{"while UserNamespacesSupport is off"}},
		{"range refused first", "1.33", "100000", "65536", map[string]string{pod1: record(2818048, 65536)}, checks.Skip, []string{"stops before it reads"}},
		{"--root-dir", "1.33", "16777216", "7208960", with(kubeadm(cfg), cfg, header, defaultEnv, "KUBELET_EXTRA_ARGS=--root-dir=/data/kubelet\n",
			"/data/kubelet/pods/p/userns", record(2818048, 65536), pod1, record(16777216, 65536)), checks.Fail,
			[]string{"/data/kubelet/pods", "id 2818048 is out of range"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkstest.Run(t, Checkers(), "kubelet.pod_mappings", podsEnv(t, tc.kube, tc.start, tc.count, tc.files))
			checkstest.Expect(t, r, tc.status, tc.want...)
		})
	}
}
