package kernel

import (
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

const (
	debianRel = "6.1.0-26-amd64"
	ubuntuRel = "6.8.0-45-generic"
	el7Rel    = "3.10.0-1160.el7.x86_64"
)

const goodConfig = `#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.0-26-amd64 Kernel Configuration
#
CONFIG_NAMESPACES=y
CONFIG_UTS_NS=y
CONFIG_TIME_NS=y
CONFIG_IPC_NS=y
CONFIG_USER_NS=y
CONFIG_PID_NS=y
CONFIG_NET_NS=y
`

func TestUserNSConfig(t *testing.T) {
	rel := map[string]string{"/proc/sys/kernel/osrelease": debianRel + "\n"}
	with := func(extra checkstest.Files) checkstest.Files {
		out := checkstest.Files{}
		for k, v := range rel {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name  string
		files checkstest.Files
		want  checkstest.Want
		path  string
	}{
		{"proc config.gz", with(checkstest.Files{"/proc/config.gz": checkstest.Gzip(t, goodConfig)}),
			checkstest.Want{Status: checks.Pass, Msg: []string{"CONFIG_USER_NS=y", "/proc/config.gz line 9"}}, "/proc/config.gz"},
		{"config.gz wins over /boot", with(checkstest.Files{
			"/proc/config.gz":           checkstest.Gzip(t, goodConfig),
			"/boot/config-" + debianRel: "# CONFIG_USER_NS is not set\n",
		}), checkstest.Want{Status: checks.Pass}, "/proc/config.gz"},
		{"only under /usr/lib/modules", with(checkstest.Files{"/usr/lib/modules/" + debianRel + "/config": goodConfig}),
			checkstest.Want{Status: checks.Pass, Msg: []string{"/usr/lib/modules/6.1.0-26-amd64/config line 9"}}, "/usr/lib/modules/6.1.0-26-amd64/config"},
		{"not set", with(checkstest.Files{"/boot/config-" + debianRel: "CONFIG_NAMESPACES=y\nCONFIG_UTS_NS=y\n# CONFIG_USER_NS is not set\n"}),
			checkstest.Want{Status: checks.Fail, Msg: []string{"CONFIG_USER_NS is not set", "/boot/config-6.1.0-26-amd64 line 3"}, Remedy: []string{"CONFIG_USER_NS=y"}}, "/boot/config-" + debianRel},
		{"absent", with(checkstest.Files{"/boot/config-" + debianRel: "CONFIG_NAMESPACES=y\n"}),
			checkstest.Want{Status: checks.Fail, Msg: []string{"does not mention CONFIG_USER_NS"}}, "/boot/config-" + debianRel},
		{"module is impossible", with(checkstest.Files{"/boot/config-" + debianRel: "CONFIG_USER_NS=m\n"}),
			checkstest.Want{Status: checks.Fail, Msg: []string{"CONFIG_USER_NS=m", "line 1", "cannot be built as a module"}}, "/boot/config-" + debianRel},
		{"no config anywhere", with(nil),
			checkstest.Want{Status: checks.Warn, Msg: []string{"no kernel config found", "/proc/config.gz", "/boot/config-6.1.0-26-amd64", "/usr/src/linux-headers-6.1.0-26-amd64/.config"}, Remedy: []string{"modprobe configs"}}, ""},
		{"directory where the config should be", with(checkstest.Files{"/boot/config-" + debianRel: "<dir>"}),
			checkstest.Want{Status: checks.Warn, Msg: []string{"is a directory"}}, "/boot/config-" + debianRel},
		{"binary junk", with(checkstest.Files{"/boot/config-" + debianRel: "CONFIG_USER_NS=y\n\x7fELF\x02\x01\x00"}),
			checkstest.Want{Status: checks.Warn, Msg: []string{"/boot/config-6.1.0-26-amd64:2:7", "binary"}}, "/boot/config-" + debianRel},
		{"invalid UTF-8", with(checkstest.Files{"/boot/config-" + debianRel: "CONFIG_X=\"\xff\"\n"}),
			checkstest.Want{Status: checks.Warn, Msg: []string{":1:11", "UTF-8"}}, "/boot/config-" + debianRel},
		{"10 MB line", with(checkstest.Files{"/boot/config-" + debianRel: strings.Repeat("C", 10<<20)}),
			checkstest.Want{Status: checks.Warn, Msg: []string{":1: line longer than"}}, "/boot/config-" + debianRel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := checkstest.Setup{Files: tt.files}.Env(t)
			r := runCheck(t, env, "kernel.config.user_ns")
			tt.want.Assert(t, r)
			if got, _ := r.Evidence["path"].(string); got != tt.path {
				t.Errorf("evidence path %q, want %q", got, tt.path)
			}
		})
	}
}

func TestUserNSConfigUnknownRelease(t *testing.T) {
	// Without a release only the release-independent paths are searched.
	env := checkstest.Setup{Files: checkstest.Files{"/usr/src/linux/.config": goodConfig}}.Env(t)
	checkstest.Want{Status: checks.Pass, Msg: []string{"/usr/src/linux/.config line 9"}}.Assert(t, runCheck(t, env, "kernel.config.user_ns"))
}

func TestNamespacesConfig(t *testing.T) {
	cfg := func(s string) checkstest.Files {
		return checkstest.Files{"/proc/sys/kernel/osrelease": el7Rel, "/boot/config-" + el7Rel: s}
	}
	tests := []struct {
		name  string
		files checkstest.Files
		want  checkstest.Want
	}{
		{"all built in", cfg(goodConfig), checkstest.Want{Status: checks.Pass, Msg: []string{"CONFIG_NET_NS", "all =y"}}},
		{"net as module", cfg(strings.Replace(goodConfig, "CONFIG_NET_NS=y", "CONFIG_NET_NS=m", 1)),
			checkstest.Want{Status: checks.Warn, Msg: []string{"CONFIG_NET_NS=m (line 11)", "module"}}},
		{"pid off, ipc absent", cfg("CONFIG_NAMESPACES=y\nCONFIG_UTS_NS=y\n# CONFIG_PID_NS is not set\nCONFIG_NET_NS=y\n"),
			checkstest.Want{Status: checks.Fail, Msg: []string{"CONFIG_IPC_NS (absent)", "CONFIG_PID_NS is not set (line 3)", "/boot/config-3.10.0-1160.el7.x86_64"}, NoMsg: []string{"UTS_NS"}}},
		{"no config", checkstest.Files{"/proc/sys/kernel/osrelease": el7Rel}, checkstest.Want{Status: checks.Warn, Msg: []string{"no kernel config found"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Assert(t, runCheck(t, checkstest.Setup{Files: tt.files}.Env(t), "kernel.config.namespaces"))
		})
	}
}

func TestKernelVersion(t *testing.T) {
	tests := []struct {
		name     string
		release  string
		target   checks.Target
		kube     string
		commands string
		want     checkstest.Want
	}{
		{"docker on EL7", el7Rel, checks.Docker, "", "", checkstest.Want{Status: checks.Pass, Msg: []string{el7Rel}}},
		{"rootless", "5.4.0-150-generic", checks.Rootless, "", "", checkstest.Want{Status: checks.Pass}},
		{"kube 1.33 on Ubuntu 24.04", ubuntuRel, checks.Kubernetes, "1.33", "", checkstest.Want{Status: checks.Pass, Msg: []string{"6.3"}}},
		{"kube 1.33 on a suffixed 6.18", "6.18.44-fc-v769", checks.Kubernetes, "1.33", "", checkstest.Want{Status: checks.Pass}},
		{"kube 1.33 on Debian 12", debianRel, checks.Kubernetes, "1.33", "",
			checkstest.Want{Status: checks.Fail, Msg: []string{"6.1.0-26-amd64 is older than 6.3", "secret", "Kubernetes 1.33"}, Remedy: []string{"6.3"}}},
		{"kube version unknown", debianRel, checks.Kubernetes, "", "", checkstest.Want{Status: checks.Fail, Msg: []string{"version unknown"}}},
		{"kube 1.27 on RHEL 9", "5.14.0-585.el9.x86_64", checks.Kubernetes, "1.27", "", checkstest.Want{Status: checks.Fail}},
		{"kube 1.26 on 5.15: volumes carry no mappings", "5.15.0-91-generic", checks.Kubernetes, "1.26", "",
			checkstest.Want{Status: checks.Pass, Msg: []string{"5.15.0-91-generic ≥ 5.12: idmapped bind mounts", "below 5.19", "containerd.snapshotter judges that"}}},
		{"kube 1.26 on 5.10: no idmapped mounts at all", "5.10.0-32-amd64", checks.Kubernetes, "1.26", "",
			checkstest.Want{Status: checks.Fail, Msg: []string{"older than 5.12", "/etc/hostname, /etc/hosts and /etc/resolv.conf", "the kubelet does not check the kernel"}, Remedy: []string{"5.12"}}},
		{"kube 1.26 on 6.1", debianRel, checks.Kubernetes, "1.26", "", checkstest.Want{Status: checks.Pass}},
		{"kube 1.33 on 6.1: runc's error named", debianRel, checks.Kubernetes, "1.33", "",
			checkstest.Want{Status: checks.Fail, Msg: []string{"the kubelet does not check the kernel", "failed to set MOUNT_ATTR_IDMAP", "service-account token"}}},
		{"kube 1.26 with containerd 1.7", "5.10.0-32-amd64", checks.Kubernetes, "1.26",
			`{"containerd --version": "containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-1\n"}`,
			checkstest.Want{Status: checks.Pass, Msg: []string{"containerd 1.7.24~ds1 chowns"}}},
		{"containerd target on 5.15", "5.15.0-91-generic", checks.Containerd, "",
			`{"containerd --version": "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7\n"}`,
			checkstest.Want{Status: checks.Pass, Msg: []string{"`ctr run --uidmap` chowns a copy", "below 5.19", "containerd.snapshotter judges that"}}},
		{"containerd target on 6.1", debianRel, checks.Containerd, "", "", checkstest.Want{Status: checks.Pass, Msg: []string{"claims idmapped layers (remap-ids) without probing from 5.19 on"}}},
		{"unreadable release", "", checks.Kubernetes, "1.33", "", checkstest.Want{Status: checks.Warn, Msg: []string{"/proc/sys/kernel/osrelease"}}},
		{"garbage release", "linux", checks.Kubernetes, "1.33", "", checkstest.Want{Status: checks.Warn, Msg: []string{`"linux"`, "not a version"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := checkstest.Files{}
			if tt.release != "" {
				files["/proc/sys/kernel/osrelease"] = tt.release + "\n"
			}
			env := checkstest.Setup{Files: files, Target: tt.target, Kube: tt.kube, Commands: tt.commands}.Env(t)
			r := runCheck(t, env, "kernel.version")
			tt.want.Assert(t, r)
			if tt.release != "" && r.Evidence["release"] != tt.release {
				t.Errorf("evidence release = %v", r.Evidence["release"])
			}
		})
	}
}

func TestEL7(t *testing.T) {
	tests := []struct {
		name    string
		release string
		cmdline string // "" = no /proc/cmdline
		target  checks.Target
		want    checkstest.Want
	}{
		{"not EL7", ubuntuRel, "", checks.Docker, checkstest.Want{Status: checks.Skip}},
		{"EL8 is not EL7", "4.18.0-553.el8_10.x86_64", "", checks.Docker, checkstest.Want{Status: checks.Skip}},
		{"7.3 without the switch", "3.10.0-514.el7.x86_64", "BOOT_IMAGE=/vmlinuz-3.10.0-514.el7.x86_64 root=/dev/mapper/centos-root ro crashkernel=auto rhgb quiet\n", checks.Docker,
			checkstest.Want{Status: checks.Fail, Msg: []string{"before 7.4", "does not have it"}, Remedy: []string{`grubby --update-kernel=ALL --args="user_namespace.enable=1"`, "reboot"}}},
		{"7.3 rootless needs unprivileged too", "3.10.0-514.el7.x86_64", "ro quiet\n", checks.Rootless,
			checkstest.Want{Status: checks.Fail, Remedy: []string{`--args="user_namespace.enable=1 namespace.unpriv_enable=1"`}}},
		{"7.3 with the switch", "3.10.0-514.26.2.el7.x86_64", "ro user_namespace.enable=1 quiet\n", checks.Docker,
			checkstest.Want{Status: checks.Warn, Msg: []string{"has user_namespace.enable=1", "7.6"}, Remedy: []string{"yum update kernel"}}},
		{"bare switch means on", "3.10.0-327.el7.x86_64", "ro user_namespace.enable\n", checks.Docker, checkstest.Want{Status: checks.Warn}},
		{"last occurrence wins", "3.10.0-327.el7.x86_64", "user_namespace.enable=1 user_namespace.enable=0\n", checks.Docker,
			checkstest.Want{Status: checks.Fail, Msg: []string{"has user_namespace.enable=0"}}},
		{"7.3 cmdline unreadable", "3.10.0-514.el7.x86_64", "", checks.Docker, checkstest.Want{Status: checks.Warn, Msg: []string{"/proc/cmdline could not be read"}}},
		{"7.5 mounts limited", "3.10.0-862.el7.x86_64", "", checks.Docker, checkstest.Want{Status: checks.Warn, Msg: []string{"7.4 or later, before 7.6", "kernel build 957"}}},
		{"7.9", el7Rel, "BOOT_IMAGE=/vmlinuz-3.10.0-1160.el7.x86_64 ro\n", checks.Docker, checkstest.Want{Status: checks.Pass, Msg: []string{"max_user_namespaces defaults to 0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := checkstest.Files{"/proc/sys/kernel/osrelease": tt.release + "\n"}
			if tt.cmdline != "" {
				files["/proc/cmdline"] = tt.cmdline
			}
			r := runCheck(t, checkstest.Setup{Files: files, Target: tt.target}.Env(t), "kernel.el7_userns")
			tt.want.Assert(t, r)
			if tt.cmdline != "" && tt.want.Status != checks.Skip {
				if r.Evidence["cmdline"] != strings.TrimSpace(tt.cmdline) {
					t.Errorf("evidence cmdline = %v", r.Evidence["cmdline"])
				}
			}
		})
	}
}
