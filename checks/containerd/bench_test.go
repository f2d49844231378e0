package containerd

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// BenchmarkContainerdArea runs both containerd checks, facts included, on a
// snapshot of a 2.x node: the real default config, a systemd unit with a
// drop-in, and eight imported drop-ins.
func BenchmarkContainerdArea(b *testing.B) {
	main, err := os.ReadFile("../../config/containerd/testdata/default-2.1.9.toml")
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{
		cfgPath: strings.Replace(string(main), "imports = []", "imports = ['/etc/containerd/conf.d/*.toml']", 1),
		unit:    "[Unit]\nDescription=containerd\n[Service]\nExecStartPre=-/sbin/modprobe overlay\nExecStart=/usr/bin/containerd\nRestart=always\n",
		"/etc/systemd/system/containerd.service.d/override.conf": "[Service]\nLimitNOFILE=infinity\n",
		"/proc/sys/kernel/osrelease":                             "6.8.0-45-generic\n",
	}
	for i := 0; i < 8; i++ {
		files[fmt.Sprintf("/etc/containerd/conf.d/%02d.toml", i*10)] = "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  sync_remove = true\n"
	}
	checkstest.Bench(b, checkstest.Env(b, checks.Containerd, files, v216, nil), Checkers(), checks.Pass)
}
