package containerd

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

// BenchmarkContainerdArea runs both containerd checks, facts included, on a
// snapshot of a 2.x node: the real default config, a systemd unit with a
// drop-in, and eight imported drop-ins.
func BenchmarkContainerdArea(b *testing.B) {
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
	main, err := os.ReadFile("../../config/containerd/testdata/default-2.1.9.toml")
	if err != nil {
		b.Fatal(err)
	}
	put(cfgPath, strings.Replace(string(main), "imports = []", "imports = ['/etc/containerd/conf.d/*.toml']", 1))
	for i := 0; i < 8; i++ {
		put(fmt.Sprintf("/etc/containerd/conf.d/%02d.toml", i*10), "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  sync_remove = true\n")
	}
	put(unit, "[Unit]\nDescription=containerd\n[Service]\nExecStartPre=-/sbin/modprobe overlay\nExecStart=/usr/bin/containerd\nRestart=always\n")
	put("/etc/systemd/system/containerd.service.d/override.conf", "[Service]\nLimitNOFILE=infinity\n")
	put("/proc/sys/kernel/osrelease", "6.8.0-45-generic\n")
	h, err := host.At(dir)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := run.ParseRecorded(strings.NewReader(v216))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		env := &checks.Env{Host: h, Run: run.NewMemo(rec), Probes: probe.Disabled{Reason: "snapshot"}, Target: checks.Containerd}
		for _, c := range Checkers() {
			if r := c.Check(ctx, env); r.Status != checks.Pass {
				b.Fatalf("%s: %s %s", c.Info().ID, r.Status, r.Message)
			}
		}
	}
}
