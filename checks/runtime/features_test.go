package runtime

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
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
