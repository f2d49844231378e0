package kernel

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

// hostTree describes a snapshot tree: host path → content. A value
// starting with "-> " makes a symlink to the rest; "<dir>" a directory.
type hostTree map[string]string

type setup struct {
	files    hostTree
	target   checks.Target
	kube     string // planned Kubernetes version, "" for none
	commands string // commands.json
}

func (s setup) env(t *testing.T) *checks.Env {
	t.Helper()
	dir := t.TempDir()
	for p, content := range s.files {
		write(t, dir, p, content)
	}
	h, err := host.At(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmds := s.commands
	if cmds == "" {
		cmds = "{}"
	}
	rec, err := run.ParseRecorded(strings.NewReader(cmds))
	if err != nil {
		t.Fatal(err)
	}
	env := &checks.Env{Host: h, Run: rec, Probes: probe.Disabled{Reason: "test"}, Target: s.target}
	if env.Target == "" {
		env.Target = checks.Docker
	}
	if s.kube != "" {
		env.Kube = version.Must(version.NewVersion(s.kube))
		env.KubeSource = "--kubernetes-version"
	}
	return env
}

func write(t *testing.T, root, p, content string) {
	t.Helper()
	real := filepath.Join(root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(content, "-> "):
		if err := os.Symlink(strings.TrimPrefix(content, "-> "), real); err != nil {
			t.Fatal(err)
		}
	case content == "<dir>":
		if err := os.MkdirAll(real, 0o755); err != nil {
			t.Fatal(err)
		}
	default:
		if err := os.WriteFile(real, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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

// run runs the check id and returns its result.
func runCheck(t *testing.T, env *checks.Env, id string) checks.Result {
	t.Helper()
	for _, c := range Checkers() {
		if c.Info().ID == id {
			return c.Check(context.Background(), env)
		}
	}
	t.Fatalf("no check %s", id)
	return checks.Result{}
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
