package kernel

import (
	"fmt"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// BenchmarkKernelArea runs every kernel.* check against a snapshot of an
// Ubuntu 24.04-sized host: a 300 KB gzipped config.
func BenchmarkKernelArea(b *testing.B) {
	var cfg strings.Builder
	for i := 0; cfg.Len() < 300<<10; i++ {
		fmt.Fprintf(&cfg, "CONFIG_OPTION_%d=y\n# CONFIG_OFF_%d is not set\n", i, i)
	}
	cfg.WriteString(goodConfig)
	files := checkstest.Files{
		"/proc/sys/kernel/osrelease": ubuntuRel + "\n",
		"/proc/config.gz":            checkstest.Gzip(b, cfg.String()),
		"/proc/cmdline":              "BOOT_IMAGE=/vmlinuz ro quiet splash\n",
	}
	// Any verdict will do: the host is sized, not tuned to pass.
	checkstest.Bench(b, checkstest.Env(b, checks.Rootless, files, "", nil), Checkers(), "")
}
