package apply

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/txn"
)

// RevertOptions are revert's flags.
type RevertOptions struct {
	Restart  bool
	Restarts Restarter
	StateDir string
	// Force puts the backups back even over files changed since usernsctl
	// wrote them (their current content is saved first).
	Force bool
	// DryRun writes nothing and reports the diffs a revert would apply.
	DryRun bool
}

// Revert restores every file usernsctl's applies changed to its bytes
// before the first apply, removes the files they created, puts live
// settings back, and (with Restart) restarts the daemons of the applied
// targets. A second Revert changes nothing.
func Revert(ctx context.Context, env *checks.Env, opts RevertOptions) (*Result, error) {
	res := &Result{Schema: RevertSchema, DryRun: opts.DryRun, Changes: []Change{}, Live: []LiveChange{}, Notes: []string{}}
	if opts.DryRun {
		return revertPreview(env, opts, res)
	}
	if opts.Restart {
		if !env.Host.Live() {
			return nil, inputErr(errors.New("--restart with --root: nothing is executed or restarted under --root"))
		}
		if err := opts.Restarts.Usable(); err != nil {
			return nil, inputErr(err)
		}
	}
	// What the applies did beyond files, read before the revert removes it.
	st := &state{}
	if b, err := env.Host.ReadFile(stateFile); err == nil {
		if st, err = parseState(b); err != nil {
			res.Notes = append(res.Notes, err.Error()+": live settings are left as they are")
			st = &state{}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		res.Notes = append(res.Notes, fmt.Sprintf("%v: live settings are left as they are", err))
	}

	r, err := txn.Revert(ctx, env.Host, txn.Options{StateDir: opts.StateDir, Force: opts.Force})
	if err != nil {
		if errors.Is(err, txn.ErrRevertRefused) {
			res.Failed, res.Msg = true, err.Error()
			res.Fix = "check what changed the file; `usernsctl revert --force` restores the backups anyway (the current content is saved first)"
			return res, nil
		}
		return nil, err
	}
	for _, c := range r.Changes {
		res.Changes = append(res.Changes, Change(c))
	}
	for _, l := range st.Live {
		cur, err := env.Host.ReadFile(l.Path)
		switch {
		case err != nil:
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %v: left as it is", l.Path, err))
		case strings.TrimSpace(string(cur)) != l.Value:
			res.Notes = append(res.Notes, fmt.Sprintf("%s is %q, not the %q usernsctl set: left as it is", l.Path, strings.TrimSpace(string(cur)), l.Value))
		default:
			back := LiveChange{Path: l.Path, Before: l.Value, Value: l.Before, Why: "restore the value before usernsctl"}
			if err := writeLive(env.Host, []LiveChange{back}); err != nil {
				res.Notes = append(res.Notes, err.Error())
				continue
			}
			res.Live = append(res.Live, back)
		}
	}
	res.Changed = r.Changed || len(res.Live) > 0
	daemons := st.Restart
	res.RestartRequired = r.Changed && len(daemons) > 0
	if !res.Changed {
		res.Msg = "nothing to revert: no usernsctl apply is recorded"
		return res, nil
	}
	if opts.Restart && res.RestartRequired {
		if err := opts.Restarts.Restart(ctx, dedupe(daemons)); err != nil {
			res.Failed, res.Msg = true, fmt.Sprintf("reverted %s, but the restart failed: %v", checks.Count(len(res.Changes), "file"), err)
			return res, nil
		}
		res.Restarted = true
	}
	res.Msg = fmt.Sprintf("reverted %s and %s to their state before usernsctl", checks.Count(len(res.Changes), "file"), checks.Count(len(res.Live), "live setting"))
	if res.RestartRequired && !res.Restarted {
		res.Msg += "; restart " + strings.Join(dedupe(daemons), " and ") + " to take effect"
	}
	return res, nil
}

func dedupe(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !strings.Contains(" "+strings.Join(out, " ")+" ", " "+s+" ") {
			out = append(out, s)
		}
	}
	return out
}

// revertPreview is revert --dry-run: the diffs, the live settings that
// would go back, and nothing written.
func revertPreview(env *checks.Env, opts RevertOptions, res *Result) (*Result, error) {
	r, err := txn.RevertPreview(env.Host, txn.Options{StateDir: opts.StateDir, Force: opts.Force})
	if err != nil {
		if errors.Is(err, txn.ErrRevertRefused) {
			res.Failed, res.Msg = true, err.Error()
			res.Fix = "check what changed the file; `usernsctl revert --force` restores the backups anyway (the current content is saved first)"
			return res, nil
		}
		return nil, err
	}
	for _, c := range r.Changes {
		res.Changes = append(res.Changes, Change(c))
	}
	if b, err := env.Host.ReadFile(stateFile); err == nil {
		if st, err := parseState(b); err == nil {
			for _, l := range st.Live {
				if cur, err := env.Host.ReadFile(l.Path); err == nil && strings.TrimSpace(string(cur)) == l.Value {
					res.Live = append(res.Live, LiveChange{Path: l.Path, Before: l.Value, Value: l.Before, Why: "restore the value before usernsctl"})
				}
			}
			res.RestartRequired = r.Changed && len(st.Restart) > 0
		}
	}
	res.Changed = r.Changed || len(res.Live) > 0
	res.Msg = "nothing to revert: no usernsctl apply is recorded"
	if res.Changed {
		res.Msg = fmt.Sprintf("would revert %s and %s to their state before usernsctl", checks.Count(len(res.Changes), "file"), checks.Count(len(res.Live), "live setting"))
	}
	return res, nil
}
