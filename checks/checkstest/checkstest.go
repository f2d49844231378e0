// Package checkstest builds snapshot hosts for the checks' tests: the
// checks.Env that reads a tree written by internal/hosttree (or a fixture),
// and the few assertions every area's tests share. Only tests import it.
package checkstest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/hosttree"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

// NoProbes is the prober Env uses when given none.
var NoProbes = probe.Disabled{Reason: "snapshot: no probes.json"}

// Env is a snapshot host for target: files as Tree writes them, commands
// as commands.json holds them ("" = nothing installed) and the prober pr
// (nil = NoProbes).
func Env(t testing.TB, target checks.Target, files map[string]string, commands string, pr probe.Prober) *checks.Env {
	t.Helper()
	if commands == "" {
		commands = "{}"
	}
	rec, err := run.ParseRecorded(strings.NewReader(commands))
	if err != nil {
		t.Fatal(err)
	}
	if pr == nil {
		pr = NoProbes
	}
	return &checks.Env{Host: hosttree.Host(t, files), Run: rec, Probes: pr, Target: target, TargetSource: source(target)}
}

// At is the Env `usernsctl --root dir --target target` builds: the tree's
// own .usernsctl/commands.json and probes.json, commands run once.
func At(t testing.TB, dir string, target checks.Target) *checks.Env {
	t.Helper()
	h, err := host.At(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := run.ParseRecorded(nil)
	f, ferr := h.Open(run.CommandsFile)
	if ferr == nil {
		rec, err = run.ParseRecorded(f)
		f.Close()
	} else if !errors.Is(ferr, fs.ErrNotExist) {
		err = ferr
	}
	if err != nil {
		t.Fatal(err)
	}
	pr, err := probe.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	return &checks.Env{Host: h, Run: run.NewMemo(rec), Probes: pr, Target: target, TargetSource: source(target)}
}

// Kube plans Kubernetes version v on env as --kubernetes-version does; ""
// leaves the version unknown.
func Kube(t testing.TB, env *checks.Env, v string) *checks.Env {
	t.Helper()
	if v == "" {
		return env
	}
	k, err := version.NewVersion(v)
	if err != nil {
		t.Fatal(err)
	}
	env.Kube, env.KubeSource = k, "--kubernetes-version"
	return env
}

func source(target checks.Target) string {
	if target == "" {
		return ""
	}
	return "--target"
}

// Fresh is a new Env over env's host, runner and prober, with no facts
// loaded yet: the state each usernsctl invocation starts from.
func Fresh(env *checks.Env) *checks.Env {
	return &checks.Env{Host: env.Host, Run: env.Run, Probes: env.Probes, Target: env.Target,
		TargetSource: env.TargetSource, Kube: env.Kube, KubeSource: env.KubeSource, User: env.User}
}

// Run runs the check id from list on env. A missing id, or one that does
// not apply to env's target, fails the test: the runner would never run it.
func Run(t testing.TB, list []checks.Checker, id string, env *checks.Env) checks.Result {
	t.Helper()
	for _, c := range list {
		if c.Info().ID != id {
			continue
		}
		if env.Target != "" && !c.Info().AppliesTo(env.Target) {
			t.Fatalf("%s does not apply to %s", id, env.Target)
		}
		return c.Check(context.Background(), env)
	}
	t.Fatalf("no check %s", id)
	return checks.Result{}
}

// Expect asserts r's status, that every fragment is in its message or
// remedy, and that a warning or failure says how to fix it.
func Expect(t testing.TB, r checks.Result, status checks.Status, fragments ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %s, want %s\nmessage: %s\nremedy: %s", r.Status, status, r.Message, r.Remedy)
	}
	for _, f := range fragments {
		if !strings.Contains(r.Message, f) && !strings.Contains(r.Remedy, f) {
			t.Errorf("%q in neither message nor remedy\nmessage: %s\nremedy: %s", f, r.Message, r.Remedy)
		}
	}
	if (status == checks.Warn || status == checks.Fail) && r.Remedy == "" {
		t.Errorf("%s without a remedy: %s", status, r.Message)
	}
}

// Bench measures one run of every check in list over env's host: each
// iteration starts from Fresh(env) with a new command memo, as each
// invocation does. Every result must have status want ("" accepts any
// verdict).
func Bench(b *testing.B, env *checks.Env, list []checks.Checker, want checks.Status) {
	b.Helper()
	ctx := context.Background()
	for b.Loop() {
		e := Fresh(env)
		e.Run = run.NewMemo(env.Run)
		for _, c := range list {
			r := c.Check(ctx, e)
			if r.Status == "" || (want != "" && r.Status != want) {
				b.Fatalf("%s: %q, want %q: %s", c.Info().ID, r.Status, want, r.Message)
			}
		}
	}
}

// Files is a snapshot tree in hosttree.Tree's forms: host path → content,
// "-> target" a symlink, "<dir>" a directory.
type Files = map[string]string

// Setup is a snapshot host for one check's test: files, the target (Docker
// when empty), the Kubernetes version planned for ("" for none) and
// commands.json.
type Setup struct {
	Files    Files
	Target   checks.Target
	Kube     string
	Commands string
}

// Env is the Env for s.
func (s Setup) Env(t testing.TB) *checks.Env {
	t.Helper()
	if s.Target == "" {
		s.Target = checks.Docker
	}
	return Kube(t, Env(t, s.Target, s.Files, s.Commands, nil), s.Kube)
}

// Gzip compresses s (a /proc/config.gz).
func Gzip(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Want is what a result must say: its status, fragments its message must
// (Msg) and must not (NoMsg) contain, fragments of its remedy.
type Want struct {
	Status checks.Status
	Msg    []string
	Remedy []string
	NoMsg  []string
}

// Assert checks r against w; a warning or failure must carry a remedy.
func (w Want) Assert(t testing.TB, r checks.Result) {
	t.Helper()
	if r.Status != w.Status {
		t.Errorf("status %s, want %s\nmessage: %s\nremedy: %s", r.Status, w.Status, r.Message, r.Remedy)
	}
	for _, m := range w.Msg {
		if !strings.Contains(r.Message, m) {
			t.Errorf("message lacks %q:\n%s", m, r.Message)
		}
	}
	for _, m := range w.NoMsg {
		if strings.Contains(r.Message, m) {
			t.Errorf("message has %q:\n%s", m, r.Message)
		}
	}
	for _, m := range w.Remedy {
		if !strings.Contains(r.Remedy, m) {
			t.Errorf("remedy lacks %q:\n%s", m, r.Remedy)
		}
	}
	if r.Status != checks.Pass && r.Status != checks.Skip && r.Remedy == "" {
		t.Errorf("%s without a remedy: %s", r.Status, r.Message)
	}
}
