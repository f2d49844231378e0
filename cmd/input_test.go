package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/hosttree"
)

const k8sReady = "../fixtures/hosts/fedora-kubernetes-ready"

// Every input apply reads that does not parse is bad input: exit 2, one
// JSON object naming the file and line, nothing written, in a dry run too.
func TestApplyBadInputIsExit2(t *testing.T) {
	const dj, ct, kc = "etc/docker/daemon.json", "etc/containerd/config.toml", "var/lib/kubelet/config.yaml"
	for _, c := range []struct {
		name, tree, target, file, content string
		dir                               bool
		want                              string
	}{
		{"daemon.json array", ready, "docker", dj, "[1]\n", false, "/etc/docker/daemon.json:1:1: the top-level value is an array"},
		{"daemon.json null", ready, "docker", dj, "null\n", false, "/etc/docker/daemon.json:1:1: the top-level value is null"},
		{"daemon.json trailing comma", ready, "docker", dj, "{\"a\": 1,}\n", false, "/etc/docker/daemon.json:1:9:"},
		{"daemon.json comment", ready, "docker", dj, "{ // no\n}\n", false, "/etc/docker/daemon.json:1:3:"},
		{"daemon.json trailing data", ready, "docker", dj, "{}\n{}\n", false, "/etc/docker/daemon.json:2:1:"},
		{"daemon.json directory", ready, "docker", dj, "", true, "/etc/docker/daemon.json: is a directory"},
		{"daemon.json huge number", ready, "docker", dj, "{\"max-concurrent-downloads\": 1e400}\n", false, "/etc/docker/daemon.json:1:30: the number 1e400 is out of range"},
		{"config.toml bad version", k8sReady, "kubernetes", ct, "version = 'three'\n", false, "/etc/containerd/config.toml"},
		{"config.toml bad import", k8sReady, "kubernetes", ct, "version = 3\nimports = ['/etc/containerd/missing[.toml']\n", false, "/etc/containerd/config.toml"},
		{"config.toml binary", k8sReady, "containerd", ct, "version = 3\n\x00\x01\x02\n", false, "/etc/containerd/config.toml:2"},
		{"kubelet config", k8sReady, "kubernetes", kc, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: [\n", false, "/var/lib/kubelet/config.yaml:"},
		{"subuid BOM", ready, "docker", "etc/subuid", "\ufeffubuntu:100000:65536\n", false, "/etc/subuid:1:1: a UTF-8 byte order mark"},
	} {
		for _, dry := range []bool{false, true} {
			t.Run(c.name+map[bool]string{true: " dry run"}[dry], func(t *testing.T) {
				tree := hosttree.Copy(t, c.tree)
				p := filepath.Join(tree, c.file)
				os.Remove(p)
				if c.dir {
					os.MkdirAll(p, 0o755)
				} else if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
					t.Fatal(err)
				}
				before := fingerprint(t, tree)
				args := []string{"apply", "--root", tree, "--target", c.target, "-o", "json"}
				if c.target == "kubernetes" {
					args = append(args, "--kubernetes-version", "1.33")
				}
				if dry {
					args = append(args, "--dry-run")
				}
				code, stdout, stderr := runCLI(args...)
				v := oneJSON(t, stdout)
				msg, _ := v["msg"].(string)
				if code != 2 || v["failed"] != true || !strings.Contains(msg, c.want) || !strings.Contains(msg, "nothing was written") {
					t.Errorf("exit %d, msg %q (want %q)\nstderr: %s", code, msg, c.want, stderr)
				}
				if strings.Contains(msg, "Go value") || strings.Contains(msg, "strconv.") || strings.Contains(msg, "bufio.") {
					t.Errorf("Go internals in %q", msg)
				}
				if fingerprint(t, tree) != before {
					t.Error("bad input, but apply wrote")
				}
			})
		}
	}
}

// check and apply give one verdict on the same input.
func TestCheckAndApplyAgree(t *testing.T) {
	t.Run("daemon.json symlink: both follow it, the link stays", func(t *testing.T) {
		tree := hosttree.Copy(t, notReady)
		d := filepath.Join(tree, "etc/docker")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "real.json"), []byte("{\"log-level\": \"info\"}\n"), 0o644)
		os.Symlink("real.json", filepath.Join(d, "daemon.json"))
		if code, out, errOut := runCLI("apply", "--root", tree, "--target", "docker"); code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
		if l, err := os.Readlink(filepath.Join(d, "daemon.json")); err != nil || l != "real.json" {
			t.Errorf("the link was replaced: %q %v", l, err)
		}
		if b, _ := os.ReadFile(filepath.Join(d, "real.json")); !strings.Contains(string(b), `"userns-remap": "default"`) {
			t.Errorf("real.json: %s", b)
		}
		if code, out, _ := runCLI("check", "--root", tree, "--target", "docker"); code != 0 {
			t.Errorf("check after apply: exit %d\n%s", code, out)
		}
	})
	t.Run("whitespace-only subuid line: check fails it, apply refuses it", func(t *testing.T) {
		tree := hosttree.Copy(t, ready)
		f, _ := os.OpenFile(filepath.Join(tree, "etc/subuid"), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("   \n")
		f.Close()
		ccode, cout, _ := runCLI("check", "--root", tree, "--target", "docker", "-o", "json")
		acode, aout, _ := runCLI("apply", "--root", tree, "--target", "docker", "-o", "json")
		if ccode != 1 || !strings.Contains(cout, "/etc/subuid:3") || acode != 2 || !strings.Contains(aout, "/etc/subuid:3") {
			t.Errorf("check exit %d, apply exit %d\n%s\n%s", ccode, acode, cout, aout)
		}
	})
	t.Run("--user ' admin': a usage error for both", func(t *testing.T) {
		for _, verb := range []string{"check", "apply"} {
			code, _, stderr := runCLI(verb, "--root", ready, "--target", "docker", "--user", " admin")
			if code != 2 || !strings.Contains(stderr, "blanks") {
				t.Errorf("%s: exit %d %q", verb, code, stderr)
			}
		}
	})
	t.Run("duplicate userns-remap keys: both use the last", func(t *testing.T) {
		tree := hosttree.Copy(t, notReady)
		os.MkdirAll(filepath.Join(tree, "etc/docker"), 0o755)
		os.WriteFile(filepath.Join(tree, "etc/docker/daemon.json"), []byte("{\"userns-remap\": \"alice\", \"userns-remap\": \"default\"}\n"), 0o644)
		code, out, errOut := runCLI("apply", "--root", tree, "--target", "docker", "-o", "json")
		if code != 0 || !strings.Contains(out, "dockremap") {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
		if code, out, _ := runCLI("check", "--root", tree, "--target", "docker"); code != 0 {
			t.Errorf("check after apply: exit %d\n%s", code, out)
		}
	})
}

// Names apply creates follow useradd's default NAME_REGEX.
func TestApplyNamesFollowUseradd(t *testing.T) {
	for _, name := range []string{"Admin", "1abc", "a b", "-x", "dock.remap", strings.Repeat("a", 33)} {
		t.Run(name, func(t *testing.T) {
			tree := hosttree.Copy(t, notReady)
			before := fingerprint(t, tree)
			code, _, stderr := runCLI("apply", "--root", tree, "--target", "docker", "--user", name)
			if code != 2 || fingerprint(t, tree) != before {
				t.Errorf("exit %d: %s", code, stderr)
			}
		})
	}
	tree := hosttree.Copy(t, notReady)
	if code, _, stderr := runCLI("apply", "--root", tree, "--target", "docker", "--user", "remap_user-1"); code != 0 {
		t.Errorf("a useradd name: exit %d: %s", code, stderr)
	}
}

// A verify that examined no container proved nothing: not a success.
func TestVerifyNothingExamined(t *testing.T) {
	code, out, _ := runCLI("verify", "--root", verifyHosts+"docker-remap", "--target", "docker")
	if code != 1 || !strings.Contains(out, "nothing was verified") || !strings.Contains(out, "NOT VERIFIED") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestSnapshotTarKinds(t *testing.T) {
	code, _, stderr := runCLI("snapshot", "--tar", filepath.Join(t.TempDir(), "x.zip"))
	if code != 2 || !strings.Contains(stderr, "want FILE.tar") {
		t.Errorf("exit %d %q", code, stderr)
	}
}

// revert --dry-run shows the diffs a revert would apply and writes nothing.
func TestRevertDryRun(t *testing.T) {
	tree := hosttree.Copy(t, notReady)
	if code, _, stderr := runCLI("apply", "--root", tree, "--target", "docker"); code != 0 {
		t.Fatal(stderr)
	}
	before := fingerprint(t, tree)
	code, out, _ := runCLI("revert", "--root", tree, "--dry-run", "-o", "json")
	v := oneJSON(t, out)
	changes, _ := v["changes"].([]any)
	if code != 0 || v["changed"] != true || v["dry_run"] != true || len(changes) == 0 || !strings.Contains(out, `-dockremap:100000:65536`) {
		t.Errorf("exit %d\n%s", code, out)
	}
	if fingerprint(t, tree) != before {
		t.Error("revert --dry-run wrote")
	}
	if code, _, _ := runCLI("revert", "--root", tree); code != 0 {
		t.Fatal("revert")
	}
	code, out, _ = runCLI("revert", "--root", tree, "--dry-run", "-o", "json")
	if v := oneJSON(t, out); code != 0 || v["changed"] != false {
		t.Errorf("after revert: exit %d\n%s", code, out)
	}
}
