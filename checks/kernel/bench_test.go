package kernel

import (
	"fmt"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// BenchmarkKernelArea runs every kernel-area check against a snapshot of
// an Ubuntu 24.04-sized host: a 300 KB gzipped config, two dozen sysctl.d
// files and a hundred AppArmor profiles.
func BenchmarkKernelArea(b *testing.B) {
	var cfg strings.Builder
	for i := 0; cfg.Len() < 300<<10; i++ {
		fmt.Fprintf(&cfg, "CONFIG_OPTION_%d=y\n# CONFIG_OFF_%d is not set\n", i, i)
	}
	cfg.WriteString(goodConfig)
	files := hostTree{
		"/proc/sys/kernel/osrelease":  ubuntuRel + "\n",
		"/proc/config.gz":             gz(b, cfg.String()),
		"/proc/cmdline":               "BOOT_IMAGE=/vmlinuz ro quiet splash\n",
		maxNS:                         "63432\n",
		restrictKnob:                  "1\n",
		"/usr/bin/rootlesskit":        "bin",
		"/etc/apparmor.d/rootlesskit": ubuntuRootlesskitProfile,
		"/etc/sysctl.conf":            debianSysctlConf,
	}
	for i := 0; i < 100; i++ {
		files[fmt.Sprintf("/etc/apparmor.d/profile%d", i)] = fmt.Sprintf("profile p%d /usr/bin/p%d flags=(unconfined) {\n  userns,\n}\n", i, i)
	}
	for i := 0; i < 12; i++ {
		files[fmt.Sprintf("/usr/lib/sysctl.d/%02d-vendor.conf", i*5)] = "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\nfs.protected_symlinks = 1\n"
		files[fmt.Sprintf("/etc/sysctl.d/%02d-local.conf", i*5+1)] = "kernel.kptr_restrict = 1\n"
	}
	// Any verdict will do: the host is sized, not tuned to pass.
	checkstest.Bench(b, checkstest.Env(b, checks.Rootless, files, "", nil), Checkers(), "")
}
