package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// containerdBinaries are the real containerd binaries to compare against:
// the one on PATH plus any listed in USERNSCTL_TEST_CONTAINERD
// (colon-separated), e.g. unpacked newer releases.
func containerdBinaries(t *testing.T) []string {
	var bins []string
	if p, err := exec.LookPath("containerd"); err == nil {
		bins = append(bins, p)
	}
	for _, p := range filepath.SplitList(os.Getenv("USERNSCTL_TEST_CONTAINERD")) {
		if p != "" {
			bins = append(bins, p)
		}
	}
	if len(bins) == 0 {
		t.Skip("no containerd binary: install containerd or set USERNSCTL_TEST_CONTAINERD to compare with `containerd config dump`")
	}
	return bins
}

// TestMergeMatchesContainerdConfigDump checks the merge model against the
// real thing: `containerd config dump` prints the effective config.
func TestMergeMatchesContainerdConfigDump(t *testing.T) {
	for _, bin := range containerdBinaries(t) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--version").Output()
		cancel()
		if err != nil {
			t.Fatalf("%s --version: %v", bin, err)
		}
		v, err := versions.FromOutput("containerd", bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		seg := v.Core.Segments()
		for len(seg) < 3 {
			seg = append(seg, 0)
		}
		opts := OptionsFor(seg[0], seg[1], seg[2])
		_, hi := Supported(seg[0], seg[1])
		version := 2
		if hi >= 3 {
			version = 3
		}
		t.Run(v.Raw, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, "config.toml")
			write := func(p, s string) {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(main, fmt.Sprintf(`version = %d
root = %q
imports = [%q, %q]
disabled_plugins = ["io.containerd.internal.v1.tracing"]

[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "/data/overlay"
  upperdir_label = true
`, version, filepath.Join(dir, "root"), filepath.Join(dir, "conf.d", "*.toml"), filepath.Join(dir, "last.toml")))
			write(filepath.Join(dir, "conf.d", "10-a.toml"), fmt.Sprintf(`version = %d
root = ""
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.zfs"]

[plugins."io.containerd.snapshotter.v1.overlayfs"]
  upperdir_label = false
`, version))
			write(filepath.Join(dir, "last.toml"), fmt.Sprintf(`version = %d
[plugins."io.containerd.snapshotter.v1.overlayfs"]
  sync_remove = true
`, version))

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dump, err := exec.CommandContext(ctx, bin, "--config", main, "config", "dump").Output()
			if err != nil {
				t.Fatalf("config dump: %v", err)
			}
			real, err := Parse(bytes.NewReader(dump), "dump")
			if err != nil {
				t.Fatal(err)
			}
			h, err := host.At("/")
			if err != nil {
				t.Fatal(err)
			}
			ours, err := Load(h, main, opts)
			if err != nil {
				t.Fatal(err)
			}
			got, _, _ := ours.Lookup("plugins", PluginOverlayfs)
			want := real.Tree["plugins"].(map[string]any)[PluginOverlayfs].(map[string]any)
			// The dump fills in every field the plugin knows; a field our
			// merge does not set must be at its zero value there.
			for k, rv := range want {
				ov, ok := got.(map[string]any)[k]
				if !ok && !isZero(rv) {
					t.Errorf("overlayfs %s: containerd has %v, the model has nothing", k, rv)
				}
				if ok && !reflect.DeepEqual(ov, rv) {
					t.Errorf("overlayfs %s: containerd has %v, the model %v", k, rv, ov)
				}
			}
			wantRoot, _ := real.Tree["root"].(string)
			if root, _, _ := ours.Root(); root != wantRoot {
				t.Errorf("root %q, containerd %q", root, wantRoot)
			}
			gotDis, _, _ := ours.Lookup("disabled_plugins")
			if fmt.Sprint(gotDis) != fmt.Sprint(real.Tree["disabled_plugins"]) {
				t.Errorf("disabled_plugins %v, containerd %v", gotDis, real.Tree["disabled_plugins"])
			}
			t.Logf("%s (%s): overlayfs %v", v.Raw, strings.Fields(opts.Rule.String())[1], got)
		})
	}
}
