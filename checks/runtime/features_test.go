package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/internal/run"
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "features", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseFeaturesRealOutputs(t *testing.T) {
	for _, tc := range []struct {
		file          string
		userns, idmap bool
	}{
		{"runc-1.1.5.json", true, false}, // experimental features, no mountExtensions
		{"runc-1.2.6.json", true, true},
		{"crun-1.9.json", true, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := ParseFeatures(strings.NewReader(fixture(t, tc.file)), tc.file)
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if f.UserNS() != tc.userns || f.IDMap() != tc.idmap {
				t.Errorf("%s: userns %v idmap %v, want %v %v", tc.file, f.UserNS(), f.IDMap(), tc.userns, tc.idmap)
			}
		})
	}
}

func TestParseFeaturesBadInput(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"syntax", "{\n  \"linux\": {\n    \"namespaces\": [\"user\",]\n  }\n}", "x:3:"},
		{"type", "{\"linux\": {\"namespaces\": \"user\"}}", "x:1:"},
		{"truncated", "{\"linux\": {\"namespa", "x:1:"},
		{"empty", "  \n", "empty output"},
		{"no linux", "{\"ociVersionMax\": \"1.2.0\"}", "no \"linux\" object"},
		{"binary", "\x00\x01\x02\xff", "x:1:1"},
		{"help text", "NAME:\n   runc features - show the enabled features\n", "x:1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseFeatures(strings.NewReader(tc.in), "x"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	big := bytes.Repeat([]byte(" "), maxFeatures+1)
	if _, err := ParseFeatures(bytes.NewReader(big), "x"); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("oversized: %v", err)
	}
}

// commands builds commands.json: stdout strings, or run.Entry values.
func commands(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// featuresEnv is a host with no files whose commands answer as cmds says.
func featuresEnv(t *testing.T, target checks.Target, kube string, cmds map[string]any) *checks.Env {
	t.Helper()
	return checkstest.Kube(t, checkstest.Env(t, target, nil, commands(t, cmds), nil), kube)
}

func TestFeaturesCheck(t *testing.T) {
	runc115 := map[string]any{
		"runc --version": "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4\n",
		"runc features":  fixture(t, "runc-1.1.5.json"),
	}
	runc126 := map[string]any{
		"runc --version": "runc version 1.2.6\ncommit: v1.2.6-0-ge89a2992\nspec: 1.2.0\ngo: go1.22.12\nlibseccomp: 2.5.5\n",
		"runc features":  fixture(t, "runc-1.2.6.json"),
	}
	crun181 := map[string]any{
		"crun --version": "crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\nrundir: /run/crun\nspec: 1.0.0\n+SYSTEMD +SELINUX +APPARMOR +CAP +SECCOMP +EBPF +YAJL\n",
		"crun features":  run.Entry{Stderr: fixture(t, "crun-1.8.1.stderr"), Exit: 1},
	}
	crun19 := map[string]any{
		"crun --version": "crun version 1.9\ncommit: a538ac4ea1ff319bcfe2bf81cb5c6f687e2dc9d3\nrundir: /run/crun\nspec: 1.0.0\n",
		"crun features":  fixture(t, "crun-1.9.json"),
	}
	merge := func(ms ...map[string]any) map[string]any {
		out := map[string]any{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		target checks.Target
		kube   string
		cmds   map[string]any
		status checks.Status
		want   []string
	}{
		{"runc 1.2.6", checks.Kubernetes, "1.33", runc126, checks.Pass, []string{"runc 1.2.6 declares \"user\"", "idmap.enabled = true"}},
		{"runc 1.1.5 k8s 1.33", checks.Kubernetes, "1.33", runc115, checks.Fail, []string{"runc 1.1.5+ds1 lists no linux.mountExtensions.idmap", "hostUsers: false"}},
		{"runc 1.1.5 containerd", checks.Containerd, "", runc115, checks.Warn, []string{"idmapped mounts are not available"}},
		{"containerd 1.7 does not ask", checks.Containerd, "", merge(runc115, map[string]any{"containerd --version": "containerd containerd.io 1.7.22 7f7fdf5fed64eb6a7caf99b3e12efcf9d60e311c\n"}),
			checks.Skip, []string{"containerd 1.7.22 does not consult the OCI runtime's features"}},
		{"containerd 2.1 asks", checks.Containerd, "", merge(runc115, map[string]any{"containerd --version": "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7\n"}),
			checks.Warn, []string{"idmapped mounts are not available"}},
		{"crun 1.8.1 only, k8s", checks.Kubernetes, "1.30", crun181, checks.Fail, []string{"crun 1.8.1 has no `features` subcommand", "exited 1"}},
		{"crun 1.8.1 only, containerd", checks.Containerd, "", crun181, checks.Skip, []string{"crun 1.8.1 has no `features` subcommand"}},
		{"crun 1.9 only", checks.Kubernetes, "1.33", crun19, checks.Pass, []string{"crun 1.9 declares"}},
		{"runc ok, crun old", checks.Kubernetes, "1.33", merge(runc126, crun181), checks.Warn, []string{"crun is installed too"}},
		{"runc old, crun ok", checks.Kubernetes, "1.33", merge(runc115, crun19), checks.Fail, []string{"runc 1.1.5+ds1", "crun 1.9 declares"}},
		{"nothing", checks.Kubernetes, "1.33", map[string]any{}, checks.Skip, []string{"neither runc nor crun"}},
		{"garbage", checks.Kubernetes, "1.33", map[string]any{"runc --version": "runc version 1.2.6\n", "runc features": "{\"linux\": [1,"},
			checks.Warn, []string{"`runc features` output:1:"}},
		{"not recorded", checks.Kubernetes, "1.33", map[string]any{"runc --version": "runc version 1.2.6\n"}, checks.Warn, []string{"could not be run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := FeaturesChecker().Check(context.Background(), featuresEnv(t, tc.target, tc.kube, tc.cmds))
			if r.Status != tc.status {
				t.Fatalf("status %s, want %s: %s", r.Status, tc.status, r.Message)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Message, w) {
					t.Errorf("%q not in %q", w, r.Message)
				}
			}
			if (r.Status == checks.Fail || r.Status == checks.Warn) && r.Remedy == "" {
				t.Error("no remedy")
			}
		})
	}
}
