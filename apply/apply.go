package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/catalog"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/config/sysctl"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/internal/txn"
	"github.com/usernsctl/usernsctl/remap"
)

// Schemas of the JSON outputs.
const (
	ApplySchema  = "usernsctl.apply/v1"
	RevertSchema = "usernsctl.revert/v1"
)

// Options are apply's flags.
type Options struct {
	Target    checks.Target
	User      string // docker remap spec (--user)
	Count     uint64 // --count: ids per new docker range
	MaxPods   int    // --max-pods
	SlowChown Mode
	Metacopy  Mode
	FixSysctl bool
	// Force names failing checks that must not block the apply ("all").
	Force  []string
	DryRun bool
	// Restart restarts the daemons whose config changed and waits for
	// them; see Restarter.
	Restart  bool
	Restarts Restarter
	// StateDir is txn's state directory (journal, lock); default
	// /var/lib/usernsctl.
	StateDir string
}

// Change is one file in the apply JSON.
type Change struct {
	Path   string `json:"path"`
	Action string `json:"action"`
	Backup string `json:"backup"`
	Diff   string `json:"diff"`
}

// Result is the output contract of apply and revert (other tools and
// Ansible parse it; keep it stable).
type Result struct {
	Schema string `json:"schema"`
	// Version is the usernsctl that produced the result.
	Version         string           `json:"version"`
	Target          checks.Target    `json:"target,omitempty"`
	Changed         bool             `json:"changed"`
	Failed          bool             `json:"failed"`
	Msg             string           `json:"msg"`
	DryRun          bool             `json:"dry_run,omitempty"`
	Changes         []Change         `json:"changes"`
	Live            []LiveChange     `json:"live"`
	Notes           []string         `json:"notes"`
	Blocking        []checks.Outcome `json:"blocking,omitempty"`
	Fix             string           `json:"fix,omitempty"`
	RestartRequired bool             `json:"restart_required"`
	Restarted       bool             `json:"restarted"`
}

type applier struct {
	env    *checks.Env
	runner run.Runner // not memoized: validations and restart polls run for real each time
	opts   Options
	// confirm runs after every file is written, before the commit is
	// final (containerd config dump): an error rolls everything back.
	confirm []func() error
}

// Apply runs the checks, refuses when a failing check is not one this
// apply fixes, plans the changes and commits them (or, with DryRun, only
// shows them). Errors: *errs.Input (exit 2); a Result with Failed (exit 1).
// Its steps: gate, plan, commit, live, restart; each failure after the
// commit undoes what came before it.
func Apply(ctx context.Context, env *checks.Env, runner run.Runner, opts Options) (*Result, error) {
	a := &applier{env: env, runner: runner, opts: opts}
	res := &Result{Schema: ApplySchema, Target: opts.Target, DryRun: opts.DryRun, Changes: []Change{}, Live: []LiveChange{}, Notes: []string{}}
	if err := a.usable(); err != nil {
		return nil, err
	}
	if err := a.inputs(ctx); err != nil {
		return nil, err
	}
	if a.gate(ctx, res) {
		return res, nil
	}

	var tx *txn.Tx
	read := hostReader(env)
	if !opts.DryRun {
		var err error
		if tx, err = txn.Begin(ctx, env.Host, txn.Options{StateDir: opts.StateDir}, a.paths(ctx)...); err != nil {
			return nil, err
		}
		defer tx.Close()
		for _, r := range tx.Recovered() {
			res.Notes = append(res.Notes, "recovered an interrupted run: "+r)
		}
		read = tx.Read
	}
	p, err := a.plan(ctx, read, res)
	if err != nil || res.Failed {
		return res, err
	}
	changes := p.changes()
	res.Changed = changes.Changed() || len(p.live) > 0
	res.RestartRequired = res.Changed && len(p.daemons) > 0
	if opts.DryRun {
		for _, c := range changes {
			if c.Action() != "" {
				res.Changes = append(res.Changes, Change{Path: c.Path, Action: c.Action(), Diff: c.Diff()})
			}
		}
		res.Msg = summary(res, "would change")
		return res, nil
	}

	if err := a.commit(tx, changes, res); err != nil || res.Failed {
		return res, err
	}
	if err := writeLive(env.Host, p.live); err != nil {
		res.Failed, res.Msg = true, fmt.Sprintf("failed: %v; files rolled back%s", err, a.undo(tx, p.live))
		return res, nil
	}
	if opts.Restart && res.RestartRequired {
		a.restart(ctx, tx, p, res)
		if res.Failed {
			return res, nil
		}
	}
	res.Msg = summary(res, "changed")
	return res, nil
}

// usable refuses flags that cannot work here, before anything is read.
func (a *applier) usable() error {
	if a.opts.Restart && !a.env.Host.Live() {
		return inputErr(errors.New("--restart with --root: nothing is executed or restarted under --root"))
	}
	if a.opts.Restart && !a.opts.DryRun {
		if err := a.opts.Restarts.Usable(); err != nil {
			return inputErr(err)
		}
	}
	return nil
}

// inputs refuses, before the checks run, every file this apply reads that
// does not parse: bad input is exit 2 with the file, line and fix, not a
// failing check. The facts are the ones the checks read: one verdict.
func (a *applier) inputs(ctx context.Context) error {
	bad := func(err error, file string) error {
		return inputErr(fmt.Errorf("%w\nnothing was written: fix %s (`usernsctl check --target %s` names the same), then run apply again", err, file, a.opts.Target))
	}
	ids := facts.SubIDsOf(a.env)
	for _, f := range []facts.SubIDFile{ids.UID, ids.GID} {
		if f.Err != nil {
			return bad(f.Err, f.Path)
		}
		if f.File != nil {
			if err := remap.Refuse(f.File); err != nil {
				return inputErr(err)
			}
		}
	}
	switch a.opts.Target {
	case checks.Docker:
		d := facts.DockerConfigOf(a.env)
		if d.Err != nil {
			return bad(d.Err, d.Path)
		}
		if d.RemapErr != nil {
			return bad(d.RemapErr, d.Path)
		}
	case checks.Containerd, checks.Kubernetes:
		if c := facts.ContainerdConfigOf(ctx, a.env); c.Err != nil {
			return bad(c.Err, c.Path)
		}
		if a.opts.Target == checks.Kubernetes {
			if k := facts.KubeletConfigOf(a.env); k.Err != nil {
				return bad(k.Err, k.Path)
			}
		}
	}
	return nil
}

// gate runs the target's checks; a failing check that this apply neither
// fixes nor was told to --force refuses the apply (true: res says why).
func (a *applier) gate(ctx context.Context, res *Result) bool {
	rep := checks.Run(ctx, a.env, catalog.For(a.opts.Target), checks.Options{}, "")
	blocking := a.blocking(rep)
	if len(blocking) == 0 {
		return false
	}
	res.Failed, res.Blocking = true, blocking
	ids := make([]string, len(blocking))
	for i, o := range blocking {
		ids[i] = o.ID
	}
	res.Msg = fmt.Sprintf("refused, nothing written: %s that this apply does not fix: %s", checks.Count(len(blocking), "failing check"), strings.Join(ids, ", "))
	res.Fix = "fix them (see each remedy), or name them in --force to go ahead anyway"
	return true
}

// plan builds the target's edits in memory, reading through read (the
// transaction's locked reads, or the host for a dry run). A refusal sets
// res.Failed.
func (a *applier) plan(ctx context.Context, read Reader, res *Result) (*plan, error) {
	p := newPlan(a.env, read)
	if a.opts.DryRun {
		// A dry run takes no locks: what the check read moments ago is as
		// good as reading again.
		ids := facts.SubIDsOf(a.env)
		for _, f := range []facts.SubIDFile{ids.UID, ids.GID} {
			if f.File != nil {
				b := f.File.Source()
				if b == nil {
					b = []byte{} // exists, empty
				}
				p.seed(f.Path, b)
			}
		}
	}
	if err := a.build(ctx, p); err != nil {
		var ref *errs.Refusal
		if !errors.As(err, &ref) {
			return nil, err
		}
		res.Failed, res.Msg, res.Fix = true, "refused, nothing written: "+ref.Reason, ref.Fix
	}
	res.Notes = append(res.Notes, p.notes...)
	res.Live = append(res.Live, p.live...)
	return p, nil
}

// commit writes the planned files in one transaction; the confirmations
// (containerd config dump) run before the state file, the last write, so
// that a refusal rolls everything back.
func (a *applier) commit(tx *txn.Tx, changes txn.Plan, res *Result) error {
	if len(a.confirm) > 0 {
		for i := range changes {
			if changes[i].Path == stateFile {
				changes[i].Check = a.confirmAll
			}
		}
	}
	committed, err := tx.Commit(changes)
	if err != nil {
		if errors.Is(err, txn.ErrConflict) {
			return err
		}
		res.Failed, res.Msg = true, "failed, every file rolled back: "+err.Error()
		return nil
	}
	for _, c := range committed.Changes {
		res.Changes = append(res.Changes, Change(c))
	}
	return nil
}

// restart restarts the daemons whose config changed; when one does not
// come back, the previous files and settings are restored and the daemons
// restarted with them.
func (a *applier) restart(ctx context.Context, tx *txn.Tx, p *plan, res *Result) {
	err := a.opts.Restarts.Restart(ctx, p.daemons)
	if err == nil {
		res.Restarted = true
		return
	}
	undoErr := a.undo(tx, p.live)
	again := a.opts.Restarts.Restart(ctx, p.daemons)
	res.Failed = true
	res.Msg = fmt.Sprintf("failed: %v; the previous files are restored%s", err, undoErr)
	if again != nil {
		res.Msg += fmt.Sprintf("; restarting with them failed too: %v", again)
	} else {
		res.Msg += " and the daemon runs with them again"
	}
}

func (a *applier) confirmAll([]byte) error {
	for _, f := range a.confirm {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// undo reverts this apply's files and live settings; the returned text is
// appended to a failure message.
func (a *applier) undo(tx *txn.Tx, live []LiveChange) string {
	var msgs []string
	if _, err := tx.Undo(); err != nil {
		msgs = append(msgs, fmt.Sprintf("undoing the files failed too: %v (run `usernsctl revert`)", err))
	}
	back := make([]LiveChange, 0, len(live))
	for _, l := range live {
		back = append(back, LiveChange{Path: l.Path, Before: l.Value, Value: l.Before})
	}
	if err := writeLive(a.env.Host, back); err != nil {
		msgs = append(msgs, fmt.Sprintf("restoring live settings failed: %v", err))
	}
	if len(msgs) == 0 {
		return ""
	}
	return "; " + strings.Join(msgs, "; ")
}

func summary(res *Result, verb string) string {
	what := fmt.Sprintf("%s %s and %s", verb, checks.Count(len(res.Changes), "file"), checks.Count(len(res.Live), "live setting"))
	switch {
	case !res.Changed:
		return fmt.Sprintf("no change: the host is already set up for %s", res.Target)
	case res.Restarted:
		return what + "; restarted and answering"
	case res.RestartRequired:
		return what + "; restart the daemon to take effect"
	}
	return what
}

// build plans the target's changes.
func (a *applier) build(ctx context.Context, p *plan) error {
	if a.opts.FixSysctl {
		if err := a.planSysctl(p); err != nil {
			return err
		}
	}
	var err error
	switch a.opts.Target {
	case checks.Docker:
		err = a.planDocker(ctx, p)
	case checks.Containerd:
		err = a.planContainerd(ctx, p)
	case checks.Kubernetes:
		err = a.planKubernetes(ctx, p)
	default:
		return inputErr(fmt.Errorf("apply --target %s: apply supports docker, containerd and kubernetes", a.opts.Target))
	}
	if err != nil {
		return err
	}
	return p.recordState(string(a.opts.Target))
}

// fixedBy lists the checks whose failure this apply repairs.
func (a *applier) fixedBy() []string {
	var ids []string
	switch a.opts.Target {
	case checks.Docker:
		ids = []string{"subid.files", "subid.remap_user", "docker.userns_remap"}
	case checks.Containerd:
		ids = []string{"containerd.snapshotter"}
	case checks.Kubernetes:
		ids = []string{"subid.files", "subid.kubelet", "containerd.snapshotter"}
	}
	if a.opts.FixSysctl {
		// probe.userns fails with ENOSPC while the limit is 0.
		ids = append(ids, maxUserNSCheck, "probe.userns")
	}
	return ids
}

// blocking are the failing checks apply neither fixes nor was told to
// ignore.
func (a *applier) blocking(rep *checks.Report) []checks.Outcome {
	fixed := a.fixedBy()
	var out []checks.Outcome
	for _, o := range rep.Checks {
		if o.Status != checks.Fail || slices.Contains(fixed, o.ID) || slices.Contains(a.opts.Force, o.ID) || slices.Contains(a.opts.Force, "all") {
			continue
		}
		out = append(out, o)
	}
	return out
}

// paths are every file the plan may write, for the transaction's locks.
func (a *applier) paths(ctx context.Context) []string {
	ps := []string{groupFile, gshadowFile, passwdFile, shadowFile, subuidFile, subgidFile,
		cdconfig.DropInPath, metacopyFile, maxUserNSFile, stateFile}
	ps = append(ps, dockerPath(a.env))
	if p := containerdPath(ctx, a.env); p != "" {
		ps = append(ps, p)
	}
	ps = append(ps, sysctl.Conf)
	return ps
}

// writeLive writes kernel settings in place through the host seam, each
// only if it still holds the value it was planned from.
func writeLive(h *host.Host, live []LiveChange) error {
	for _, l := range live {
		cur, err := h.ReadFile(l.Path)
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(cur)); got != l.Before {
			return fmt.Errorf("%s is %q, planned from %q: something else changed it", l.Path, got, l.Before)
		}
		if err := h.WriteSetting(l.Path, []byte(l.Value+"\n")); err != nil {
			return err
		}
	}
	return nil
}

// DefaultRestartTimeout bounds the wait for a restarted daemon.
const DefaultRestartTimeout = 90 * time.Second
