package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/hosttree"
)

// oneJSON decodes stdout as exactly one JSON object.
func oneJSON(t *testing.T, stdout string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", stdout)
	}
	return v
}

// Every outcome with --output json is one JSON object on stdout with the
// command's schema, the version, failed, changed and msg, errors included.
func TestJSONOnEveryPath(t *testing.T) {
	tree := hosttree.Copy(t, notReady)
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		schema string
		msg    string
	}{
		{"unknown flag", []string{"check", "-o", "json", "--bogus"}, 2, "usernsctl.check/v1", "unknown flag"},
		{"unknown flag before -o", []string{"apply", "--bogus", "-o", "json"}, 2, "usernsctl.apply/v1", "unknown flag"},
		{"unknown target", []string{"check", "--output=json", "--target", "podman"}, 2, "usernsctl.check/v1", "unknown target"},
		{"unknown command", []string{"-o", "json", "frobnicate"}, 2, "usernsctl/v1", "unknown command"},
		{"missing root", []string{"check", "-ojson", "--root", "/nonexistent-usernsctl-tree"}, 2, "usernsctl.check/v1", "/nonexistent-usernsctl-tree"},
		{"empty root", []string{"apply", "-o", "json", "--target", "docker", "--root", ""}, 2, "usernsctl.apply/v1", `--root ""`},
		{"bad ignore", []string{"check", "-o", "json", "--root", tree, "--ignore", "no.such"}, 2, "usernsctl.check/v1", "no.such"},
		{"bad max-pods", []string{"apply", "-o", "json", "--root", tree, "--target", "kubernetes", "--max-pods", "abc"}, 2, "usernsctl.apply/v1", `"abc": want a whole number`},
		{"bad duration", []string{"apply", "-o", "json", "--restart-timeout", "soon"}, 2, "usernsctl.apply/v1", "want a duration"},
		{"verify no target", []string{"verify", "-o", "json", "--root", tree, "--target", "rootless"}, 2, "usernsctl.verify/v1", "rootless"},
		{"check report", []string{"check", "-o", "json", "--root", ready}, 0, "usernsctl.check/v1", "READY for docker"},
		{"verify report", []string{"verify", "-o", "json", "--root", verifyHosts + "docker-remap", "--target", "docker", "--pid", "4962"}, 0, "usernsctl.verify/v1", "VERIFIED for docker"},
		{"version", []string{"version", "-o", "json"}, 0, "usernsctl.version/v1", "usernsctl "},
		{"list", []string{"check", "--list", "-o", "json"}, 0, "usernsctl.list/v1", " checks"},
		{"ns error", []string{"ns", "-o", "json", "--root", "", "1"}, 2, "usernsctl.ns/v1", `--root ""`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, c.code, stderr)
			}
			v := oneJSON(t, stdout)
			if v["schema"] != c.schema || v["version"] == "" || v["version"] == nil {
				t.Errorf("schema %v version %v, want %s", v["schema"], v["version"], c.schema)
			}
			failed, _ := v["failed"].(bool)
			if failed != (c.code != 0) || v["changed"] != false {
				t.Errorf("failed %v changed %v for exit %d", v["failed"], v["changed"], c.code)
			}
			if msg, _ := v["msg"].(string); !strings.Contains(msg, c.msg) {
				t.Errorf("msg %q lacks %q", msg, c.msg)
			}
			if strings.Contains(stdout+stderr, "strconv.") || strings.Contains(stdout+stderr, "Go value") {
				t.Errorf("Go internals reach the operator: %s%s", stdout, stderr)
			}
		})
	}
	if tree != "" {
		// Nothing above writes: the tree is the fixture, byte for byte.
		if code, _, _ := runCLI("check", "--root", tree); code != 0 {
			t.Errorf("the copy changed: check exits %d", code)
		}
	}
}

// --root "" never means the live host.
func TestEmptyRootRefused(t *testing.T) {
	for _, args := range [][]string{
		{"check", "--root", ""},
		{"apply", "--target", "docker", "--root", "", "--dry-run"},
		{"revert", "--root="},
		{"verify", "--target", "docker", "--root", ""},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(args...)
			if code != 2 || !strings.Contains(stderr, `--root ""`) {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
		})
	}
}

// A flag that the target would ignore is a usage error, not silence.
func TestFlagsForAnotherTarget(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"check", "--root", ready, "--target", "docker", "--kubernetes-version", "1.33"}, "--kubernetes-version is for --target kubernetes"},
		{[]string{"check", "--root", ready, "--target", "kubernetes", "--user", "alice"}, "--user is for --target docker"},
		{[]string{"apply", "--root", ready, "--target", "docker", "--dry-run", "--max-pods", "10"}, "--max-pods is for --target kubernetes"},
		{[]string{"apply", "--root", ready, "--target", "docker", "--dry-run", "--slow-chown", "on"}, "--slow-chown is for --target containerd or kubernetes"},
		{[]string{"apply", "--root", ready, "--target", "containerd", "--dry-run", "--count", "65536"}, "--count is for --target docker"},
		{[]string{"verify", "--root", verifyHosts + "docker-remap", "--target", "docker", "--all"}, "--all is for --target containerd or kubernetes"},
		{[]string{"check", "--list", "--target", "bogus"}, "unknown target"},
	} {
		t.Run(strings.Join(c.args[3:], " "), func(t *testing.T) {
			code, _, stderr := runCLI(c.args...)
			if code != 2 || !strings.Contains(stderr, c.msg) {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, c.msg)
			}
		})
	}
}

// Values that apply would otherwise replace by defaults are usage errors.
func TestApplyRefusesUnusableValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--target", "kubernetes", "--max-pods", "0"}, "--max-pods 0"},
		{[]string{"--target", "kubernetes", "--max-pods", "-5"}, "--max-pods -5"},
		{[]string{"--target", "docker", "--count", "0"}, "--count 0"},
		{[]string{"--target", "docker", "--count", "1"}, "at least 65536"},
		{[]string{"--target", "docker", "--user", " admin"}, "blanks"},
		{[]string{"--target", "docker", "--user", ""}, `--user ""`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			tree := hosttree.Copy(t, notReady)
			before := fingerprint(t, tree)
			code, _, stderr := runCLI(append([]string{"apply", "--root", tree}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.msg) {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, c.msg)
			}
			if after := fingerprint(t, tree); after != before {
				t.Errorf("a refused apply wrote:\n%s\n---\n%s", before, after)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCLI(args...)
		if code != 0 || !strings.HasPrefix(out, "usernsctl ") || !strings.Contains(out, "go: go1.") || !strings.Contains(out, "commit: ") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
}

// fingerprint is every file of a tree and its content, but for the locks
// apply takes before it knows it will refuse (glibc's /etc/.pwd.lock and
// usernsctl's own state directory).
func fingerprint(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		if rel == "etc/.pwd.lock" || strings.HasPrefix(rel, "var/lib/usernsctl/") {
			return nil
		}
		b.WriteString(rel + "\n" + string(data) + "\n")
		return nil
	})
	return b.String()
}

// --output nfd prints node-feature-discovery's feature file: for check only.
func TestCheckOutputNFD(t *testing.T) {
	code, out, _ := runCLI("check", "--root", "../fixtures/hosts/fedora-kubernetes-ready", "-o", "nfd")
	if code != 0 || !strings.Contains(out, "usernsctl.io/userns-ready=true\n") || !strings.Contains(out, "usernsctl.io/userns-ids=7208960\n") || !strings.Contains(out, "usernsctl.io/idmap-tmpfs=true\n") {
		t.Errorf("exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("check", "--root", notReady, "--target", "docker", "--strict", "-o", "nfd")
	if code != 1 || !strings.Contains(out, "usernsctl.io/userns-ready=false\n") {
		t.Errorf("not ready: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCLI("verify", "-o", "nfd"); code != 2 || !strings.Contains(stderr, "nfd for check only") {
		t.Errorf("verify -o nfd: exit %d %q", code, stderr)
	}
}
