package kernel

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// hostTree describes a snapshot tree in hosttree.Tree's forms: host path
// → content, "-> target" a symlink, "<dir>" a directory.
type hostTree map[string]string

type setup struct {
	files    hostTree
	target   checks.Target
	kube     string // planned Kubernetes version, "" for none
	commands string // commands.json
}

// env is a Docker host unless the setup names another target.
func (s setup) env(t *testing.T) *checks.Env {
	t.Helper()
	if s.target == "" {
		s.target = checks.Docker
	}
	return checkstest.Kube(t, checkstest.Env(t, s.target, s.files, s.commands, nil), s.kube)
}

func gz(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func runCheck(t *testing.T, env *checks.Env, id string) checks.Result {
	t.Helper()
	return checkstest.Run(t, Checkers(), id, env)
}

// expect asserts the status and that the message (or remedy) contains
// every wanted fragment.
type expect struct {
	status checks.Status
	msg    []string
	remedy []string
	noMsg  []string
}

func (e expect) assert(t *testing.T, r checks.Result) {
	t.Helper()
	if r.Status != e.status {
		t.Errorf("status %s, want %s\nmessage: %s\nremedy: %s", r.Status, e.status, r.Message, r.Remedy)
	}
	for _, m := range e.msg {
		if !strings.Contains(r.Message, m) {
			t.Errorf("message lacks %q:\n%s", m, r.Message)
		}
	}
	for _, m := range e.noMsg {
		if strings.Contains(r.Message, m) {
			t.Errorf("message has %q:\n%s", m, r.Message)
		}
	}
	for _, m := range e.remedy {
		if !strings.Contains(r.Remedy, m) {
			t.Errorf("remedy lacks %q:\n%s", m, r.Remedy)
		}
	}
	if r.Status != checks.Pass && r.Status != checks.Skip && r.Remedy == "" {
		t.Errorf("%s without a remedy: %s", r.Status, r.Message)
	}
}
