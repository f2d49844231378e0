package probe

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

// setup is a snapshot host: files, recorded commands and probe results.
type setup struct {
	files    map[string]string
	commands string // commands.json
	probes   string // probes.json
	target   checks.Target
	kube     string
}

// env is a Kubernetes node unless the setup names another target.
func (s setup) env(t *testing.T) *checks.Env {
	t.Helper()
	probes := s.probes
	if probes == "" {
		probes = "{}"
	}
	pr, err := probe.ParseRecorded(strings.NewReader(probes), probe.File)
	if err != nil {
		t.Fatal(err)
	}
	if s.target == "" {
		s.target = checks.Kubernetes
	}
	return checkstest.Kube(t, checkstest.Env(t, s.target, s.files, s.commands, pr), s.kube)
}

func run1(t *testing.T, id string, s setup) checks.Result {
	t.Helper()
	return checkstest.Run(t, Checkers(), id, s.env(t))
}

func TestIDsAreContracts(t *testing.T) {
	want := map[string]bool{"probe.userns": true, "probe.overlay_idmap": true,
		"probe.tmpfs_idmap": true, "probe.kubelet_pods_idmap": true, "probe.proc_visible": true}
	for _, c := range Checkers() {
		if !want[c.Info().ID] {
			t.Errorf("unexpected check %s", c.Info().ID)
		}
		delete(want, c.Info().ID)
	}
	if len(want) > 0 {
		t.Errorf("missing checks: %v", want)
	}
}

func TestNotRecordedSkips(t *testing.T) {
	for _, c := range Checkers() {
		r := c.Check(context.Background(), setup{kube: "1.33"}.env(t))
		if r.Status != checks.Skip || !strings.Contains(r.Message, probe.NotRecorded) {
			t.Errorf("%s with nothing recorded: %s %q", c.Info().ID, r.Status, r.Message)
		}
	}
}

func TestUserNS(t *testing.T) {
	ok := setup{probes: `{"userns": {"ran": true, "ok": true, "detail": {"uid_map": "0 666 1", "gid_map": "0 667 1"}}}`}
	checkstest.Expect(t, run1(t, "probe.userns", ok), checks.Pass, `"0 666 1"`)

	enospc := setup{
		probes: `{"userns": {"ran": true, "step": "clone", "errno": "ENOSPC", "error": "fork/exec /proc/self/exe: no space left on device"}}`,
		files:  map[string]string{"/proc/sys/user/max_user_namespaces": "0\n"},
	}
	checkstest.Expect(t, run1(t, "probe.userns", enospc), checks.Fail, "ENOSPC", "user.max_user_namespaces is 0", "sysctl -w user.max_user_namespaces=28633")

	used := enospc
	used.files = map[string]string{"/proc/sys/user/max_user_namespaces": "15\n"}
	checkstest.Expect(t, run1(t, "probe.userns", used), checks.Fail, "used up", "= 15")

	el7 := setup{
		probes: `{"userns": {"ran": true, "step": "clone", "errno": "EINVAL", "error": "invalid argument"}}`,
		files:  map[string]string{"/proc/sys/kernel/osrelease": "3.10.0-1160.el7.x86_64\n"},
	}
	checkstest.Expect(t, run1(t, "probe.userns", el7), checks.Fail, "3.10.0-1160.el7.x86_64", "disabled at boot", "grubby --update-kernel=ALL --args=user_namespace.enable=1")

	// Before 7.4 there is no user.max_user_namespaces to set: grubby alone.
	el73 := setup{probes: el7.probes, files: map[string]string{"/proc/sys/kernel/osrelease": "3.10.0-514.26.2.el7.x86_64\n"}}
	r := run1(t, "probe.userns", el73)
	checkstest.Expect(t, r, checks.Fail, "disabled at boot", "grubby --update-kernel=ALL --args=user_namespace.enable=1`, then reboot")
	if strings.Contains(r.Remedy, "sysctl") {
		t.Errorf("remedy sets a sysctl the kernel does not have: %s", r.Remedy)
	}
	el7.files["/proc/sys/user/max_user_namespaces"] = "0\n"
	checkstest.Expect(t, run1(t, "probe.userns", el7), checks.Fail, "set user.max_user_namespaces (`sysctl -w user.max_user_namespaces=28633")

	noUserNS := el7
	noUserNS.files = map[string]string{"/proc/sys/kernel/osrelease": "6.1.0-26-amd64\n"}
	checkstest.Expect(t, run1(t, "probe.userns", noUserNS), checks.Fail, "CONFIG_USER_NS")

	eperm := setup{
		probes: `{"userns": {"ran": true, "step": "clone", "errno": "EPERM", "error": "operation not permitted"}}`,
		files: map[string]string{
			"/proc/self/status":        "Name:\tusernsctl\nSeccomp:\t2\nSeccomp_filters:\t1\n",
			"/sys/kernel/security/lsm": "lockdown,capability,apparmor\n",
		},
	}
	checkstest.Expect(t, run1(t, "probe.userns", eperm), checks.Fail, "Seccomp: 2", "apparmor", "seccomp profile")
}

const overlayFail = `{"overlay-idmap:/var/lib/containerd": {"ran": true, "ok": false, "step": "mount_setattr", "errno": "EINVAL",
  "error": "invalid argument", "detail": {"path": "/var/lib/containerd", "dir": "/var/lib/containerd", "fstype": "nfs4", "source": "nas:/export"}}}`

func TestOverlayIdmap(t *testing.T) {
	c2 := `{"containerd --version": "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7\n"}`
	r := run1(t, "probe.overlay_idmap", setup{probes: overlayFail, commands: c2, target: checks.Containerd})
	checkstest.Expect(t, r, checks.Warn, "nfs4 (nas:/export) at /var/lib/containerd", "mount_setattr failed with EINVAL", "slow_chown", "containerd's default root")
	if r.Evidence["fstype"] != "nfs4" || r.Evidence["errno"] != "EINVAL" {
		t.Errorf("evidence %v", r.Evidence)
	}

	c17 := `{"containerd --version": "containerd github.com/containerd/containerd v1.7.24 61f9fd8\n"}`
	checkstest.Expect(t, run1(t, "probe.overlay_idmap", setup{probes: overlayFail, commands: c17, target: checks.Kubernetes, kube: "1.26"}),
		checks.Pass, "containerd 1.7.24 does not idmap snapshots")

	docker := `{"overlay-idmap:/var/lib/docker": {"ran": true, "ok": false, "step": "mount overlay", "errno": "EINVAL", "error": "invalid argument",
	  "detail": {"path": "/var/lib/docker", "dir": "/var/lib", "missing": "true", "fstype": "xfs"}}}`
	checkstest.Expect(t, run1(t, "probe.overlay_idmap", setup{probes: docker, target: checks.Docker,
		files: map[string]string{"/proc/sys/kernel/osrelease": "5.15.0-91-generic\n"}}),
		checks.Pass, "xfs at /var/lib, the nearest existing directory to the missing /var/lib/docker", "does not need it", "from kernel 5.19 (this is 5.15.0-91-generic)")

	// slow_chown already set: the probe's finding stands, its remedy is done.
	slow := setup{probes: overlayFail, commands: c2, target: checks.Containerd,
		files: map[string]string{"/etc/containerd/config.toml": "version = 3\n" +
			"[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  slow_chown = true\n"}}
	checkstest.Expect(t, run1(t, "probe.overlay_idmap", slow), checks.Pass, "mount_setattr failed with EINVAL", "slow_chown = true (/etc/containerd/config.toml line 3)")

	// From 5.19 containerd claims remap-ids without probing, so slow_chown,
	// set or not, is never consulted (R12): only moving the root helps.
	k61 := map[string]string{"/proc/sys/kernel/osrelease": "6.1.0-26-amd64\n"}
	for name, files := range map[string]map[string]string{"unset": k61, "set": {
		"/proc/sys/kernel/osrelease":  k61["/proc/sys/kernel/osrelease"],
		"/etc/containerd/config.toml": slow.files["/etc/containerd/config.toml"]}} {
		t.Run("claimed, slow_chown "+name, func(t *testing.T) {
			r := run1(t, "probe.overlay_idmap", setup{probes: overlayFail, commands: c2, target: checks.Containerd, files: files})
			checkstest.Expect(t, r, checks.Warn, "kernel 6.1.0-26-amd64 ≥ 5.19", "slow_chown does not help", "on a filesystem with idmapped-mount support")
			if strings.Contains(r.Remedy, "slow-chown") {
				t.Errorf("remedy suggests slow_chown: %s", r.Remedy)
			}
		})
	}

	ok := `{"overlay-idmap:/var/lib/containerd": {"ran": true, "ok": true, "detail": {"path": "/var/lib/containerd", "dir": "/var/lib/containerd", "fstype": "ext4", "owner": "666:667"}}}`
	checkstest.Expect(t, run1(t, "probe.overlay_idmap", setup{probes: ok, commands: c2, target: checks.Containerd}), checks.Pass, "mapped owner 666:667 on ext4")

	// The snapshotter's root_path in the containerd config is what gets probed.
	conf := setup{
		target:   checks.Containerd,
		commands: c2,
		files: map[string]string{"/etc/containerd/config.toml": "version = 3\n" +
			"[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  root_path = '/data/snapshots'\n"},
		probes: `{"overlay-idmap:/data/snapshots": {"ran": true, "ok": true, "detail": {"fstype": "xfs", "dir": "/data/snapshots", "path": "/data/snapshots"}}}`,
	}
	checkstest.Expect(t, run1(t, "probe.overlay_idmap", conf), checks.Pass, "xfs at /data/snapshots", "/etc/containerd/config.toml")
}

func TestTmpfsIdmap(t *testing.T) {
	fail := `{"tmpfs-idmap": {"ran": true, "ok": false, "step": "mount_setattr", "errno": "EINVAL", "error": "invalid argument", "detail": {"fstype": "tmpfs"}}}`
	files := map[string]string{"/proc/sys/kernel/osrelease": "5.15.0-91-generic\n"}
	checkstest.Expect(t, run1(t, "probe.tmpfs_idmap", setup{probes: fail, kube: "1.33", files: files}), checks.Fail,
		"secrets, configmaps and emptyDir", "kernel ≥6.3", "5.15.0-91-generic")
	checkstest.Expect(t, run1(t, "probe.tmpfs_idmap", setup{probes: fail, kube: "1.26", files: files}), checks.Warn, "1.27 and later do")
	ok := `{"tmpfs-idmap": {"ran": true, "ok": true, "detail": {"fstype": "tmpfs", "owner": "666:667"}}}`
	checkstest.Expect(t, run1(t, "probe.tmpfs_idmap", setup{probes: ok, kube: "1.33"}), checks.Pass, "666:667")
}

const podsMountinfo = `26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
300 26 0:60 / /var/lib/kubelet/pods/1111/volumes/kubernetes.io~projected/kube-api-access-a rw,relatime shared:90 - tmpfs tmpfs rw,size=4k
301 26 0:61 / /var/lib/kubelet/pods/0000/volumes/kubernetes.io~secret/tls rw,relatime shared:91 - tmpfs tmpfs rw,size=4k
302 26 0:62 / /var/lib/kubelet/pods/2222/volumes/kubernetes.io~nfs/data rw,relatime shared:92 - nfs4 nas:/export rw,vers=4.2
303 26 0:63 / /var/lib/kubelet/pods/3333/volumes/kubernetes.io~csi/hp/mount rw,relatime shared:93 - hugetlbfs hugetlbfs rw,pagesize=2M
304 26 0:64 / /var/lib/kubelet/podsX rw,relatime shared:94 - nfs4 other:/x rw
`

func TestKubeletPods(t *testing.T) {
	probes := `{
 "idmap:/var/lib/kubelet/pods": {"ran": true, "ok": true, "detail": {"fstype": "ext4", "dir": "/var/lib/kubelet/pods", "path": "/var/lib/kubelet/pods"}},
 "idmap:/var/lib/kubelet/pods/0000/volumes/kubernetes.io~secret/tls": {"ran": true, "ok": true, "detail": {"fstype": "tmpfs"}},
 "idmap:/var/lib/kubelet/pods/2222/volumes/kubernetes.io~nfs/data": {"ran": true, "ok": false, "step": "mount_setattr", "errno": "EINVAL", "error": "invalid argument", "detail": {"fstype": "nfs4"}},
 "idmap:/var/lib/kubelet/pods/3333/volumes/kubernetes.io~csi/hp/mount": {"ran": true, "ok": false, "step": "mount_setattr", "errno": "EINVAL", "error": "invalid argument", "detail": {"fstype": "hugetlbfs"}}
}`
	s := setup{probes: probes, kube: "1.33", files: map[string]string{"/proc/self/mountinfo": podsMountinfo}}
	r := run1(t, "probe.kubelet_pods_idmap", s)
	checkstest.Expect(t, r, checks.Fail, "nfs4 volume at /var/lib/kubelet/pods/2222/volumes/kubernetes.io~nfs/data: mount_setattr failed with EINVAL",
		"hugetlbfs volume at", "NFS and hugetlbfs")
	// The two tmpfs volumes are one filesystem type, probed once (the
	// first by path); podsX is not under pods/.
	if n := r.Evidence["volume_filesystems"]; n != 3 {
		t.Errorf("volume filesystems probed: %v, want 3 (tmpfs, nfs4, hugetlbfs)", n)
	}
	if !strings.Contains(r.Message, "tmpfs volume at /var/lib/kubelet/pods/0000/volumes/kubernetes.io~secret/tls (and 1 more tmpfs mount)") {
		t.Errorf("message %q", r.Message)
	}

	checkstest.Expect(t, run1(t, "probe.kubelet_pods_idmap", setup{probes: probes, kube: "1.26"}), checks.Skip, "1.27")

	// Without a mount table the pods directory is still probed.
	r = run1(t, "probe.kubelet_pods_idmap", setup{probes: probes, kube: "1.33"})
	checkstest.Expect(t, r, checks.Pass, "ext4 at /var/lib/kubelet/pods", "volume mounts were not enumerated")

	bad := setup{probes: probes, kube: "1.33", files: map[string]string{"/proc/self/mountinfo": "26 1 254:0 / / rw - ext4 /dev/vda rw\ngarbage\n"}}
	checkstest.Expect(t, run1(t, "probe.kubelet_pods_idmap", bad), checks.Pass, "/proc/self/mountinfo:2:")
}

// The checks against the live host, with the live prober: on this
// project's machines (6.x kernels) every probe must pass.
func TestLiveChecks(t *testing.T) {
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("live probes need root (CAP_SYS_ADMIN); running as uid %d", uid)
	}
	l := probe.NewLive(host.Live())
	defer l.Close()
	env := &checks.Env{Host: host.Live(), Run: run.NewMemo(&run.Exec{}), Probes: l, Target: checks.Kubernetes,
		Kube: version.Must(version.NewVersion("1.33"))}
	for _, c := range Checkers() {
		r := c.Check(context.Background(), env)
		t.Logf("%s: %s: %s", c.Info().ID, r.Status, r.Message)
		switch c.Info().ID {
		case "probe.userns", "probe.tmpfs_idmap", "probe.kubelet_pods_idmap", "probe.overlay_idmap":
			if r.Status != checks.Pass {
				t.Errorf("%s: %s, want pass on this kernel: %s", c.Info().ID, r.Status, r.Message)
			}
		}
	}
}

// C7: the kubelet's --root-dir moves the pods directory; the probe goes
// where the kubelet keeps its pods.
func TestKubeletPodsFollowsRootDir(t *testing.T) {
	probes := `{"idmap:/data/kubelet/pods": {"ran": true, "ok": false, "step": "mount_setattr", "errno": "EINVAL", "error": "invalid argument", "detail": {"fstype": "nfs4", "dir": "/data/kubelet/pods", "path": "/data/kubelet/pods"}}}`
	files := map[string]string{
		"/usr/lib/systemd/system/kubelet.service": "[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --root-dir=/data/kubelet\n",
	}
	r := run1(t, "probe.kubelet_pods_idmap", setup{probes: probes, kube: "1.33", files: files})
	checkstest.Expect(t, r, checks.Fail, "nfs4 at /data/kubelet/pods")
	if r.Evidence["pods_dir"] != "/data/kubelet/pods" {
		t.Errorf("pods_dir %v", r.Evidence["pods_dir"])
	}
}
