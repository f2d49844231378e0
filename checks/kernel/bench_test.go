package kernel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

// BenchmarkKernelArea runs every kernel-area check against a snapshot of
// an Ubuntu 24.04-sized host: a 300 KB gzipped config, two dozen sysctl.d
// files and a hundred AppArmor profiles.
func BenchmarkKernelArea(b *testing.B) {
	dir := b.TempDir()
	put := func(p, s string) {
		real := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(real, []byte(s), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var cfg strings.Builder
	for i := 0; cfg.Len() < 300<<10; i++ {
		fmt.Fprintf(&cfg, "CONFIG_OPTION_%d=y\n# CONFIG_OFF_%d is not set\n", i, i)
	}
	cfg.WriteString(goodConfig)
	put("/proc/sys/kernel/osrelease", ubuntuRel+"\n")
	put("/proc/config.gz", gz(b, cfg.String()))
	put("/proc/cmdline", "BOOT_IMAGE=/vmlinuz ro quiet splash\n")
	put(maxNS, "63432\n")
	put(restrictKnob, "1\n")
	put("/usr/bin/rootlesskit", "bin")
	put("/etc/apparmor.d/rootlesskit", ubuntuRootlesskitProfile)
	for i := 0; i < 100; i++ {
		put(fmt.Sprintf("/etc/apparmor.d/profile%d", i), fmt.Sprintf("profile p%d /usr/bin/p%d flags=(unconfined) {\n  userns,\n}\n", i, i))
	}
	for i := 0; i < 12; i++ {
		put(fmt.Sprintf("/usr/lib/sysctl.d/%02d-vendor.conf", i*5), "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\nfs.protected_symlinks = 1\n")
		put(fmt.Sprintf("/etc/sysctl.d/%02d-local.conf", i*5+1), "kernel.kptr_restrict = 1\n")
	}
	put("/etc/sysctl.conf", debianSysctlConf)
	h, err := host.At(dir)
	if err != nil {
		b.Fatal(err)
	}
	rec, _ := run.ParseRecorded(nil)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		env := &checks.Env{Host: h, Run: rec, Probes: probe.Disabled{}, Target: checks.Rootless}
		for _, c := range Checkers() {
			if r := c.Check(ctx, env); r.Status == "" {
				b.Fatal("no status")
			}
		}
	}
}
