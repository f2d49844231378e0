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
		opts := optionsFor(seg[0], seg[1], seg[2])
		version := 2
		if seg[0] >= 2 {
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

// TestCRIMigrationMatchesContainerdConfigDump checks the model of 2.x's CRI
// migration (which file's settings reach the images and runtime plugins)
// against `containerd config dump`, which runs the same migrations.
func TestCRIMigrationMatchesContainerdConfigDump(t *testing.T) {
	v2main := "version = 2\nimports = ['/D/conf.d/*.toml']\n"
	v3main := "version = 3\nimports = ['/D/conf.d/*.toml']\n"
	cases := []struct {
		name  string
		files map[string]string
	}{
		{"v2 snapshotter without runtimes", map[string]string{"config.toml": "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n"}},
		{"v2 snapshotter with runtimes", map[string]string{"config.toml": "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n  default_runtime_name = \"crun\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\n  runtime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun.options]\n  BinaryName = \"/usr/bin/crun\"\n"}},
		{"versionless", map[string]string{"config.toml": "[plugins.cri]\n  restrict_oom_score_adj = true\n[plugins.cri.containerd]\n  snapshotter = \"native\"\n[plugins.cri.containerd.runtimes.runc.options]\n  BinaryName = \"/opt/runc\"\n"}},
		{"v2 main, v3 drop-in", map[string]string{"config.toml": v2main + "[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  BinaryName = \"/opt/runc\"\n",
			"conf.d/10.toml": "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  slow_chown = true\n"}},
		{"v3 main, v2 drop-in", map[string]string{"config.toml": v3main + "[plugins.'io.containerd.cri.v1.images']\n  snapshotter = \"zfs\"\n",
			"conf.d/10.toml": "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n  default_runtime_name = \"crun\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun.options]\n  BinaryName = \"/usr/bin/crun\"\n"}},
		{"v3", map[string]string{"config.toml": "version = 3\n[plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = true\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'crun'\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun]\n  runtime_type = 'io.containerd.runc.v2'\n  snapshotter = 'native'\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]\n  BinaryName = '/usr/bin/crun'\n"}},
	}
	for _, bin := range containerdBinaries(t) {
		out, err := exec.Command(bin, "--version").Output()
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
		if seg[0] < 2 {
			continue // 1.x reads the keys where they are written
		}
		opts := optionsFor(seg[0], seg[1], seg[2])
		for _, tc := range cases {
			t.Run(v.Raw+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				for name, body := range tc.files {
					p := filepath.Join(dir, name)
					os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "/D/", dir+"/")), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				main := filepath.Join(dir, "config.toml")
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
				rc := &Config{Rule: MergeKeys, Tree: real.Tree, origin: &originNode{}}
				h, _ := host.At("/")
				ours, err := Load(h, main, opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, get := range []struct {
					what string
					f    func(c *Config) string
				}{
					{"snapshotter", func(c *Config) string { s, _, _ := c.CRISnapshotter(); return s }},
					{"default_runtime_name", func(c *Config) string { s, _, _ := c.CRIRuntime(); return s }},
					{"restrict_oom_score_adj", func(c *Config) string { b, _, _ := c.RestrictOOMScoreAdj(); return fmt.Sprint(b) }},
					{"handlers", func(c *Config) string {
						hs, _ := c.Handlers()
						var s []string
						for _, h := range hs {
							s = append(s, h.Name+"="+h.Type+":"+h.BinaryName+":"+h.Snapshotter)
						}
						return strings.Join(s, " ")
					}},
				} {
					if g, w := get.f(ours), get.f(rc); g != w {
						t.Errorf("%s: the model has %q, containerd %q", get.what, g, w)
					}
				}
			})
		}
	}
}
