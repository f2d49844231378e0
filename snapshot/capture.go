package snapshot

import (
	"context"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/catalog"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// ProbeRecorder is a prober that remembers every result it gave.
type ProbeRecorder interface {
	probe.Prober
	Results() map[string]probe.Result
}

// Capture runs the checks of every target against the live host h with
// recording seams and returns what they used. Commands run once each
// across targets (one memo), probes likewise (the recorder memoizes).
func Capture(ctx context.Context, h *host.Host, runner run.Runner, probes ProbeRecorder) (Contents, error) {
	h.Record()
	rec := &run.Recording{Inner: runner}
	memo := run.NewMemo(rec)
	for _, t := range checks.AllTargets {
		env := &checks.Env{Host: h, Run: memo, Probes: probes}
		if err := checks.Plan(ctx, env, string(t), ""); err != nil {
			return Contents{}, err
		}
		checks.Run(ctx, env, catalog.For(t), checks.Options{}, "")
	}
	// A live check may read a version from a binary's build info instead
	// of running it; a snapshot needs the real --version output in
	// commands.json, so run what was skipped.
	for _, p := range versions.Programs {
		if _, done := rec.Log[p+" --version"]; !done && runner.Installed(p) {
			memo.Run(ctx, p, "--version")
		}
	}
	return Contents{Files: h.Recorded(), Commands: rec.Log, Probes: probes.Results()}, nil
}
