package sysctl

import (
	"fmt"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// BenchmarkSysctlArea runs every sysctl.* check against a snapshot of an
// Ubuntu 24.04-sized host: two dozen sysctl.d files and a hundred AppArmor
// profiles.
func BenchmarkSysctlArea(b *testing.B) {
	files := checkstest.Files{
		"/proc/sys/kernel/osrelease":  "6.8.0-45-generic\n",
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
