package apply_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	kubeReady   = "fedora-kubernetes-ready"
	cd17Host    = "rhel-9-containerd"
	overlayIdKy = "overlay-idmap:/var/lib/containerd"
)

// setProbe rewrites one recorded probe result in a tree.
func setProbe(t *testing.T, dir, key string, ok bool, errText string) {
	t.Helper()
	var probes map[string]map[string]any
	if err := json.Unmarshal([]byte(read(t, dir, ".usernsctl/probes.json")), &probes); err != nil {
		t.Fatal(err)
	}
	probes[key] = map[string]any{"ran": true, "ok": ok, "step": "stat", "error": errText,
		"detail": map[string]string{"fstype": "xfs"}}
	b, _ := json.Marshal(probes)
	write(t, dir, ".usernsctl/probes.json", string(b))
}

// A ready Kubernetes node: apply changes nothing.
func TestKubernetesReadyNodeNoChange(t *testing.T) {
	dir := tree(t, kubeReady)
	before := state(t, dir)
	r, code := run(t, "apply", "--target", "kubernetes", "--root", dir)
	if code != 0 || r.Changed {
		t.Fatalf("exit %d %+v", code, r)
	}
	if d := diffStates(before, state(t, dir)); len(d) > 0 {
		t.Errorf("touched %v", d)
	}
}

// No kubelet range yet: one line, 65536-aligned, 65536 × maxPods, the
// same in both files, above SUB_UID_MIN; --max-pods sizes it.
func TestKubernetesAllocatesKubeletRange(t *testing.T) {
	dir := tree(t, kubeReady)
	for _, f := range []string{"etc/subuid", "etc/subgid"} {
		var kept []string
		for _, l := range strings.SplitAfter(read(t, dir, f), "\n") {
			if !strings.HasPrefix(l, "kubelet:") {
				kept = append(kept, l)
			}
		}
		write(t, dir, f, strings.Join(kept, ""))
	}
	r, code := run(t, "apply", "--target", "kubernetes", "--root", dir, "--max-pods", "250")
	if code != 0 || !r.Changed {
		t.Fatalf("exit %d %+v", code, r)
	}
	want := "kubelet:524288:16384000\n" // Fedora's SUB_UID_MIN 524288 is 65536-aligned; 250 × 65536
	for _, f := range []string{"etc/subuid", "etc/subgid"} {
		if got := read(t, dir, f); !strings.HasSuffix(got, want) {
			t.Errorf("%s = %q, want it to end with %q", f, got, want)
		}
	}
	if _, code := run(t, "check", "--target", "kubernetes", "--root", dir); code != 0 {
		t.Errorf("check after apply: exit %d", code)
	}
}

// A kubelet range the kubelet would refuse is reported, not replaced.
func TestKubernetesRefusesMisalignedRange(t *testing.T) {
	dir := tree(t, kubeReady)
	for _, f := range []string{"etc/subuid", "etc/subgid"} {
		write(t, dir, f, strings.ReplaceAll(read(t, dir, f), "kubelet:65536:7208960", "kubelet:100000:65536"))
	}
	before := state(t, dir)
	r, code := run(t, "apply", "--target", "kubernetes", "--root", dir, "--force", "subid.kubelet")
	if code != 1 || !strings.Contains(r.Msg, "is not a multiple of 65536") || r.Fix == "" {
		t.Fatalf("exit %d %+v", code, r)
	}
	if d := diffStates(before, state(t, dir)); len(d) > 0 {
		t.Errorf("refused apply wrote %v", d)
	}
}

// containerd 2.x on a kernel where it claims no remap-ids (below 5.19,
// overlay over idmapped lower layers fails): a drop-in with slow_chown,
// imported by the main config with only bytes added; a second apply
// changes nothing; revert removes the drop-in and restores the main file.
func TestContainerd2SlowChownDropIn(t *testing.T) {
	dir := tree(t, kubeReady)
	setProbe(t, dir, overlayIdKy, false, "mount_setattr: invalid argument")
	write(t, dir, "proc/sys/kernel/osrelease", "5.15.0-122-generic\n")
	mainBefore := read(t, dir, "etc/containerd/config.toml")
	before := contentState(t, dir)
	if _, code := run(t, "check", "--target", "containerd", "--root", dir); code != 1 {
		t.Fatalf("check should fail containerd.snapshotter first: exit %d", code)
	}
	r, code := run(t, "apply", "--target", "containerd", "--root", dir)
	if code != 0 || !r.Changed {
		t.Fatalf("exit %d %+v", code, r)
	}
	drop := read(t, dir, "etc/containerd/conf.d/99-usernsctl.toml")
	if !strings.Contains(drop, "version = 3") || !strings.Contains(drop, "slow_chown = true") || !strings.Contains(drop, "'io.containerd.snapshotter.v1.overlayfs'") ||
		!strings.Contains(drop, "# kernel 5.15.0-122-generic < 5.19, so containerd probes") || !strings.Contains(drop, "claims no remap-ids") {
		t.Errorf("drop-in:\n%s", drop)
	}
	mainAfter := read(t, dir, "etc/containerd/config.toml")
	if !strings.Contains(mainAfter, "/etc/containerd/conf.d/99-usernsctl.toml") || len(mainAfter) <= len(mainBefore) {
		t.Errorf("main config does not import the drop-in")
	}
	if _, code := run(t, "check", "--target", "containerd", "--root", dir); code != 0 {
		t.Errorf("check after apply: exit %d", code)
	}
	if r, code := run(t, "apply", "--target", "containerd", "--root", dir); code != 0 || r.Changed {
		t.Errorf("second apply: exit %d %+v", code, r)
	}
	if _, code := run(t, "revert", "--root", dir); code != 0 {
		t.Fatal("revert failed")
	}
	if d := diffStates(contentState(t, dir), before); len(d) > 0 {
		t.Errorf("revert left %v", d)
	}
	// Where containerd claims remap-ids (kernel ≥5.19) but the idmapped
	// overlay does not mount, slow_chown would change nothing: refused.
	dir = tree(t, kubeReady)
	setProbe(t, dir, overlayIdKy, false, "mount_setattr: invalid argument")
	before = contentState(t, dir)
	for _, flags := range [][]string{nil, {"--slow-chown", "on"}} {
		r, code := run(t, append([]string{"apply", "--target", "containerd", "--root", dir}, flags...)...)
		if code != 1 || !strings.Contains(r.Msg, "fails for a reason slow_chown does not fix") || !strings.Contains(r.Msg, "slow_chown does not help") {
			t.Errorf("remap-ids claimed, mount fails %v: exit %d %+v", flags, code, r)
		}
		if d := diffStates(contentState(t, dir), before); len(d) > 0 {
			t.Errorf("a refused apply wrote %v", d)
		}
	}
	// Where idmap works, nothing is written.
	dir = tree(t, kubeReady)
	if r, code := run(t, "apply", "--target", "containerd", "--root", dir); code != 0 || r.Changed {
		t.Errorf("supported host: exit %d %+v", code, r)
	}
	// --slow-chown on forces it.
	if r, code := run(t, "apply", "--target", "containerd", "--root", dir, "--slow-chown", "on"); code != 0 || !r.Changed {
		t.Errorf("--slow-chown on: exit %d %+v", code, r)
	}
	if drop := read(t, dir, "etc/containerd/conf.d/99-usernsctl.toml"); !strings.Contains(drop, "# --slow-chown on: chown") {
		t.Errorf("forced drop-in says why wrongly:\n%s", drop)
	}
}

// containerd 1.7: metacopy on, persisted and live; revert puts the live
// value back.
func TestContainerd17Metacopy(t *testing.T) {
	dir := tree(t, cd17Host)
	r, code := run(t, "apply", "--target", "containerd", "--root", dir)
	if code != 0 || !r.Changed || len(r.Live) != 1 || r.Live[0].Value != "Y" {
		t.Fatalf("exit %d %+v", code, r)
	}
	if got := read(t, dir, "etc/modprobe.d/99-usernsctl-overlay.conf"); !strings.Contains(got, "options overlay metacopy=on\n") {
		t.Errorf("modprobe.d: %q", got)
	}
	if got := strings.TrimSpace(read(t, dir, "sys/module/overlay/parameters/metacopy")); got != "Y" {
		t.Errorf("live metacopy %q", got)
	}
	if r.RestartRequired {
		t.Error("metacopy needs no containerd restart")
	}
	rv, code := run(t, "revert", "--root", dir)
	if code != 0 || len(rv.Live) != 1 {
		t.Fatalf("revert: exit %d %+v", code, rv)
	}
	if got := strings.TrimSpace(read(t, dir, "sys/module/overlay/parameters/metacopy")); got != "N" {
		t.Errorf("live metacopy after revert %q", got)
	}
}

// --fix-sysctl: a hardening file's 0 is named and refused without --force;
// with it, usernsctl's file is written, the winning zero line commented
// out, and the live value set; revert restores all three.
func TestFixSysctl(t *testing.T) {
	dir := tree(t, fresh)
	write(t, dir, "etc/sysctl.d/99-zz-cis.conf", "# CIS 1.5.x\nuser.max_user_namespaces = 0\n")
	write(t, dir, "proc/sys/user/max_user_namespaces", "0\n")
	before := contentState(t, dir)
	r, code := run(t, "apply", "--target", "docker", "--root", dir, "--fix-sysctl")
	if code != 1 || !strings.Contains(r.Msg, "/etc/sysctl.d/99-zz-cis.conf:2") {
		t.Fatalf("without --force: exit %d %+v", code, r)
	}
	r, code = run(t, "apply", "--target", "docker", "--root", dir, "--fix-sysctl", "--force", "sysctl.max_user_namespaces")
	if code != 0 || !r.Changed {
		t.Fatalf("with --force: exit %d %+v", code, r)
	}
	if got := read(t, dir, "etc/sysctl.d/99-zz-cis.conf"); !strings.Contains(got, "# disabled by usernsctl") {
		t.Errorf("the later zero line is still active: %q", got)
	}
	if got := read(t, dir, "etc/sysctl.d/99-usernsctl.conf"); !strings.Contains(got, "user.max_user_namespaces = 28633") {
		t.Errorf("99-usernsctl.conf: %q", got)
	}
	if got := strings.TrimSpace(read(t, dir, "proc/sys/user/max_user_namespaces")); got != "28633" {
		t.Errorf("live value %q", got)
	}
	chk, code := run(t, "check", "--target", "docker", "--root", dir)
	_ = chk
	if code != 0 {
		t.Errorf("check after --fix-sysctl: exit %d", code)
	}
	if _, code := run(t, "revert", "--root", dir); code != 0 {
		t.Fatal("revert failed")
	}
	if d := diffStates(contentState(t, dir), before); len(d) > 0 {
		t.Errorf("revert left %v", d)
	}
}

// A daemon that is not installed is not restarted: on a node prepared
// before kubeadm join there is no kubelet yet (e2e finding F2).
func TestNoRestartForAbsentDaemon(t *testing.T) {
	dir := tree(t, kubeReady)
	var cmds map[string]any
	if err := json.Unmarshal([]byte(read(t, dir, ".usernsctl/commands.json")), &cmds); err != nil {
		t.Fatal(err)
	}
	for k := range cmds {
		if strings.HasPrefix(k, "kubelet ") {
			delete(cmds, k)
		}
	}
	b, _ := json.Marshal(cmds)
	write(t, dir, ".usernsctl/commands.json", string(b))
	for _, f := range []string{"etc/subuid", "etc/subgid"} {
		var kept []string
		for _, l := range strings.SplitAfter(read(t, dir, f), "\n") {
			if !strings.HasPrefix(l, "kubelet:") {
				kept = append(kept, l)
			}
		}
		write(t, dir, f, strings.Join(kept, ""))
	}
	r, code := run(t, "apply", "--target", "kubernetes", "--root", dir, "--kubernetes-version", "1.33")
	if code != 0 || !r.Changed || r.RestartRequired {
		t.Fatalf("exit %d %+v", code, r)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "kubelet is not installed: nothing to restart") {
		t.Errorf("notes: %v", r.Notes)
	}
}

// --fix-sysctl refuses (exit 2, nothing written) when a sysctl file cannot
// be read: it could hold the 0 that wins at boot.
func TestFixSysctlRefusesUnreadableFile(t *testing.T) {
	dir := tree(t, fresh)
	write(t, dir, "proc/sys/user/max_user_namespaces", "0\n")
	// A link that leads to a directory: listed like a file, unreadable.
	if err := os.Symlink("/etc", filepath.Join(dir, "etc/sysctl.d/99-hardening.conf")); err != nil {
		t.Fatal(err)
	}
	before := state(t, dir)
	r, code := run(t, "apply", "--target", "docker", "--root", dir, "--fix-sysctl", "--force", "all")
	if code != 2 || !strings.Contains(r.Msg, "/etc/sysctl.d/99-hardening.conf") || !strings.Contains(r.Msg, "nothing was written") {
		t.Fatalf("exit %d %+v", code, r)
	}
	if d := diffStates(before, state(t, dir)); len(d) > 0 {
		t.Errorf("wrote %v", d)
	}
}

// podsFit (P1, P2): a new kubelet range is refused while a pod's record
// would stop the kubelet with it, by the same rules kubelet.pod_mappings
// applies.
func TestKubernetesRefusesRangeThatStrandsPods(t *testing.T) {
	rec := func(host, length int) string {
		return fmt.Sprintf(`{"uidMappings":[{"hostId":%d,"containerId":0,"length":%d}],"gidMappings":[{"hostId":%d,"containerId":0,"length":%d}]}`, host, length, host, length)
	}
	for _, tc := range []struct {
		name, kube, config, record, want string
	}{
		{"P1 a record outside the new range", "1.33", "", rec(65536, 65536), "id 65536 is out of range"},
		{"P2 a record of the old length", "1.35", "userNamespaces:\n  idsPerPod: 131072\n", rec(1048576, 65536), "wrong user namespace length 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, kubeReady)
			for _, f := range []string{"etc/subuid", "etc/subgid"} {
				var kept []string
				for _, l := range strings.SplitAfter(read(t, dir, f), "\n") {
					if !strings.HasPrefix(l, "kubelet:") {
						kept = append(kept, l)
					}
				}
				write(t, dir, f, strings.Join(kept, ""))
			}
			if tc.config != "" {
				write(t, dir, "var/lib/kubelet/config.yaml", read(t, dir, "var/lib/kubelet/config.yaml")+tc.config)
			}
			write(t, dir, "var/lib/kubelet/pods/0b7c1d2e-1111-4000-8000-000000000001/userns", tc.record)
			before := state(t, dir)
			r, code := run(t, "apply", "--target", "kubernetes", "--root", dir, "--kubernetes-version", tc.kube)
			if code != 1 || !strings.Contains(r.Msg, tc.want) || !strings.Contains(r.Fix, "kubectl drain") {
				t.Fatalf("exit %d %+v", code, r)
			}
			if d := diffStates(before, state(t, dir)); len(d) > 0 {
				t.Errorf("refused apply wrote %v", d)
			}
		})
	}
}
