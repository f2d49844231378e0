package probe

import (
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// A host's mount table: proc with binfmt_misc's autofs on a permanently
// empty directory, sysfs with cgroup2 and the usual pseudo filesystems.
const hostMounts = `22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw
26 24 0:7 / /sys/kernel/debug rw,nosuid,nodev,noexec,relatime shared:8 - debugfs debugfs rw
27 23 0:40 / /proc/sys/fs/binfmt_misc rw,relatime shared:13 - autofs systemd-1 rw,fd=30
28 22 0:24 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
`

func TestProcVisible(t *testing.T) {
	daemon := func(pid, mounts string) map[string]string {
		return map[string]string{
			"/proc/" + pid + "/stat":      pid + " (containerd) S 1 " + pid + " " + pid + " 0 -1 0 0 0 0 0 0 0 0 0 20 0 12 0 1234 0 0\n",
			"/proc/" + pid + "/cmdline":   "/usr/bin/containerd\x00",
			"/proc/" + pid + "/mountinfo": mounts,
			"/proc/self/mountinfo":        hostMounts,
		}
	}
	for _, tc := range []struct {
		name   string
		target checks.Target
		files  map[string]string
		status checks.Status
		want   []string
	}{
		{"a host", checks.Kubernetes, map[string]string{"/proc/self/mountinfo": hostMounts}, checks.Pass,
			[]string{"a proc mount is fully visible and a sysfs mount is fully visible in usernsctl's own mount namespace"}},
		{"a file bound over /proc/sys/kernel/panic in containerd's namespace", checks.Kubernetes,
			daemon("812", hostMounts+"65 23 254:1 /tmp/panic /proc/sys/kernel/panic rw,relatime - ext4 /dev/vda1 rw\n"), checks.Fail,
			[]string{"containerd's mount namespace (pid 812) (/proc/812/mountinfo)", "proc at /proc has /proc/sys/kernel/panic mounted over paths inside it",
				"error mounting \"proc\" to rootfs at \"/proc\": … operation not permitted", "remove those mounts"}},
		{"a read-only /proc/sys (ProtectKernelTunables=)", checks.Containerd,
			daemon("812", hostMounts+"66 23 0:21 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw\n"), checks.Fail,
			[]string{"/proc/sys mounted over"}},
		{"LXCFS", checks.Docker, map[string]string{"/proc/self/mountinfo": hostMounts +
			"70 23 0:50 /proc/cpuinfo /proc/cpuinfo rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw\n" +
			"71 23 0:50 /proc/meminfo /proc/meminfo rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw\n"}, checks.Fail,
			[]string{"/proc/cpuinfo, /proc/meminfo"}},
		{"a second, clean proc mount suffices", checks.Kubernetes, map[string]string{"/proc/self/mountinfo": hostMounts +
			"65 23 254:1 /tmp/panic /proc/sys/kernel/panic rw,relatime - ext4 /dev/vda1 rw\n" +
			"80 28 0:60 / /run/proc2 rw,nosuid,nodev,noexec,relatime - proc proc rw\n"}, checks.Pass, nil},
		{"a read-only proc does not count", checks.Kubernetes, map[string]string{"/proc/self/mountinfo": `22 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
23 22 0:21 / /proc ro,nosuid,nodev,noexec,relatime - proc proc rw
24 22 0:22 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs rw
`}, checks.Fail, []string{"proc at /proc is read-only"}},
		{"something over /sys/fs (not an empty directory)", checks.Kubernetes, map[string]string{"/proc/self/mountinfo": hostMounts +
			"90 24 0:70 / /sys/fs/ext4 rw - tmpfs tmpfs rw\n"}, checks.Fail,
			[]string{"sysfs at /sys has /sys/fs/ext4 mounted over", `error mounting "sysfs" to rootfs at "/sys"`}},
		{"containerd gone since the scan", checks.Kubernetes, map[string]string{
			"/proc/812/stat": "812 (containerd) S 1 812 812 0 -1 0 0 0 0 0 0 0 0 0 20 0 12 0 1234 0 0\n", "/proc/self/mountinfo": hostMounts}, checks.Pass,
			[]string{"usernsctl's own mount namespace"}},
		{"not recorded", checks.Kubernetes, nil, checks.Skip, []string{"not recorded in the snapshot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run1(t, "probe.proc_visible", setup{target: tc.target, kube: "1.33", files: tc.files})
			checkstest.Expect(t, r, tc.status, tc.want...)
		})
	}
}
