package cmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const ready = "../fixtures/hosts/ubuntu-22.04-docker-ready"
const notReady = "../fixtures/hosts/debian-12-docker-fresh"

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The documented exit codes: 0 nothing failed, 1 a check failed (or a
// warning under --strict), 2 usage errors and bad input.
func TestCheckExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"check", "--root", ready}, 0, ""},
		{[]string{"check", "--root", notReady, "--target", "docker", "--strict"}, 1, ""},
		{[]string{"check", "--root", notReady, "--target", "docker", "--ignore", "all", "--strict"}, 1, ""},
		{[]string{"check", "--root", notReady, "--target", "docker"}, 0, ""},
		{[]string{"check", "--bogus"}, 2, "unknown flag"},
		{[]string{"check", "--target", "podman"}, 2, "unknown target"},
		{[]string{"check", "--output", "xml"}, 2, "want text or json"},
		{[]string{"check", "--ignore", "no.such.check"}, 2, "unknown check ID no.such.check"},
		{[]string{"check", "--kubernetes-version", "banana", "--target", "kubernetes"}, 2, "--kubernetes-version"},
		{[]string{"check", "--root", "/nonexistent-usernsctl-tree"}, 2, "--root"},
		{[]string{"check", "extra-arg"}, 2, "unknown command"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(c.args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, stderr, c.msg)
			}
		})
	}
}

// A failure named in --ignore is reported as a warning and no longer fails
// the run.
func TestCheckIgnoreTurnsFailureIntoWarning(t *testing.T) {
	tree := "../fixtures/hosts/docker-dockremap-missing-subgid"
	code, out, _ := runCLI("check", "--root", tree, "--output", "json")
	var rep struct {
		Checks []struct{ ID, Status string }
	}
	json.Unmarshal([]byte(out), &rep)
	var failing []string
	for _, c := range rep.Checks {
		if c.Status == "fail" {
			failing = append(failing, c.ID)
		}
	}
	if code != 1 || len(failing) == 0 {
		t.Fatalf("fixture should fail: exit %d %v", code, failing)
	}
	code, out, _ = runCLI("check", "--root", tree, "--output", "json", "--ignore", strings.Join(failing, ","))
	if code != 0 || !strings.Contains(out, `"ignored": true`) {
		t.Errorf("--ignore %v: exit %d\n%s", failing, code, out)
	}
}

func TestCheckList(t *testing.T) {
	code, out, _ := runCLI("check", "--list")
	if code != 0 || !strings.Contains(out, "sysctl.max_user_namespaces") || !strings.Contains(out, "subid.kubelet") {
		t.Errorf("exit %d\n%s", code, out)
	}
}
