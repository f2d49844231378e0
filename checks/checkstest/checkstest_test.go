package checkstest

import (
	"context"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/hosttree"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

func TestEnvDefaults(t *testing.T) {
	env := Env(t, checks.Docker, nil, "", nil)
	if _, err := env.Run.Run(context.Background(), "dockerd", "--version"); !run.IsNotFound(err) {
		t.Errorf("no commands: %v, want not found", err)
	}
	if r := env.Probes.Probe(context.Background(), probe.Spec{Kind: probe.UserNS}); r.Ran || r.Reason != NoProbes.Reason {
		t.Errorf("no prober: %+v", r)
	}
	if env.Target != checks.Docker || env.TargetSource != "--target" {
		t.Errorf("target %q from %q", env.Target, env.TargetSource)
	}

	env = Env(t, "", nil, `{"runc --version": "runc version 1.2.6\n"}`, probe.Disabled{Reason: "mine"})
	if out, err := env.Run.Run(context.Background(), "runc", "--version"); err != nil || string(out.Stdout) != "runc version 1.2.6\n" {
		t.Errorf("recorded command: %q %v", out.Stdout, err)
	}
	if r := env.Probes.Probe(context.Background(), probe.Spec{Kind: probe.UserNS}); r.Reason != "mine" {
		t.Errorf("prober not kept: %+v", r)
	}
	if env.TargetSource != "" {
		t.Errorf("no target, source %q", env.TargetSource)
	}
}

func TestAtReadsTheSnapshotsRecordings(t *testing.T) {
	dir := hosttree.Tree(t, map[string]string{
		run.CommandsFile: `{"runc --version": "runc version 1.2.6\n"}`,
		probe.File:       `{"userns": {"ran": true, "ok": true}}`,
	})
	env := At(t, dir, checks.Containerd)
	if out, err := env.Run.Run(context.Background(), "runc", "--version"); err != nil || string(out.Stdout) != "runc version 1.2.6\n" {
		t.Errorf("commands.json: %q %v", out.Stdout, err)
	}
	if r := env.Probes.Probe(context.Background(), probe.Spec{Kind: probe.UserNS}); !r.Ran || !r.OK {
		t.Errorf("probes.json: %+v", r)
	}

	env = At(t, hosttree.Tree(t, nil), checks.Docker)
	if _, err := env.Run.Run(context.Background(), "runc", "--version"); !run.IsNotFound(err) {
		t.Errorf("no commands.json: %v", err)
	}
}

func TestRunAndExpect(t *testing.T) {
	list := []checks.Checker{
		checks.New(checks.Info{ID: "a.one", Targets: []checks.Target{checks.Docker}}, func(context.Context, *checks.Env) checks.Result {
			return checks.Warnf("fix it", "seen %d", 1)
		}),
	}
	r := Run(t, list, "a.one", Env(t, checks.Docker, nil, "", nil))
	Expect(t, r, checks.Warn, "seen 1", "fix it")

	// A fresh env shares the host but not the loaded facts.
	env := Env(t, checks.Docker, nil, "", nil)
	n := 0
	load := func(*checks.Env) (int, error) { n++; return n, nil }
	checks.Fact(env, "k", load)
	if v, _ := checks.Fact(Fresh(env), "k", load); v != 2 || Fresh(env).Host != env.Host {
		t.Errorf("Fresh kept facts or lost the host: %d", v)
	}
}

func TestKube(t *testing.T) {
	env := Kube(t, Env(t, checks.Kubernetes, nil, "", nil), "1.33")
	if env.Kube == nil || env.Kube.String() != "1.33.0" || env.KubeSource != "--kubernetes-version" {
		t.Errorf("planned %v from %q", env.Kube, env.KubeSource)
	}
	if env = Kube(t, Env(t, checks.Kubernetes, nil, "", nil), ""); env.Kube != nil || env.KubeSource != "" {
		t.Errorf("no version: %v from %q", env.Kube, env.KubeSource)
	}
}
