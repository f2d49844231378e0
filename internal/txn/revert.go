package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/inroot"
)

// How applies stack: each apply that changed something is one journal
// entry. Revert undoes all recorded applies at once, newest first, so the
// host goes back to how it was before the first of them ("revert = back to
// before usernsctl"). A file goes back to the content it had before the
// first apply that touched it, provided every later apply found it exactly
// as the previous one left it and it still holds what the last apply
// wrote. Otherwise someone else changed it in between (a useradd adding
// its own subuid line, an operator's edit), and putting the old bytes back
// would silently drop that change: Revert then changes nothing at all and
// names the file and its backup, unless Options.Force. Undone entries move
// to reverted/; a second Revert finds none and says so.

// ErrRevertRefused: a file changed since usernsctl wrote it, and Force
// was not given.
var ErrRevertRefused = errors.New("revert refused")

// Revert undoes every recorded apply. See the package documentation.
func Revert(ctx context.Context, h *host.Host, opt Options) (*Result, error) {
	tx, err := Begin(ctx, h, opt)
	if err != nil {
		return nil, err
	}
	defer tx.Close()
	entries, err := tx.j.entries()
	if err != nil {
		return nil, err
	}
	var active []*entry
	for _, e := range entries {
		if e.m != nil && e.m.Kind == kindApply && e.m.State == stateCommitted {
			active = append(active, e)
		}
	}
	res, err := tx.revert(active)
	if err != nil {
		return nil, err
	}
	if cerr := tx.Close(); cerr != nil {
		return res, cerr
	}
	return res, nil
}

// RevertPreview is Revert without the writes: the diffs a revert would
// apply now, for `revert --dry-run`. It takes no lock and creates nothing:
// an interrupted run is reported, not rolled back (the next real run
// does that first).
func RevertPreview(h *host.Host, opt Options) (*Result, error) {
	if opt.StateDir == "" {
		opt.StateDir = DefaultStateDir
	}
	state, err := inroot.Clean(opt.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	root, err := inroot.Open(h.Root())
	if err != nil {
		return nil, err
	}
	defer root.Close()
	tx := &Tx{opt: opt, root: root, j: &journal{r: root, state: state}}
	entries, err := tx.j.entries()
	if errors.Is(err, fs.ErrNotExist) {
		return &Result{Message: "nothing to revert: no usernsctl apply is recorded in " + tx.j.backups()}, nil
	}
	if err != nil {
		return nil, err
	}
	var active []*entry
	for _, e := range entries {
		if e.m == nil || e.m.State == statePending {
			return nil, fmt.Errorf("%s holds an interrupted run: run `usernsctl revert` (or apply) without --dry-run to roll it back first", tx.j.backups())
		}
		if e.m.Kind == kindApply && e.m.State == stateCommitted {
			active = append(active, e)
		}
	}
	if len(active) == 0 {
		return &Result{Message: "nothing to revert: no usernsctl apply is recorded in " + tx.j.backups()}, nil
	}
	plan, _, err := tx.revertPlan(active)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for _, c := range plan {
		if c.Action() != "" {
			res.Changes = append(res.Changes, Applied{Path: c.Path, Action: c.Action(), Diff: c.Diff()})
		}
	}
	res.Changed = len(res.Changes) > 0
	res.Message = fmt.Sprintf("would restore %d file(s) of %d usernsctl apply(s)", len(res.Changes), len(active))
	return res, nil
}

// Undo reverts what this transaction committed, for example because the
// daemon did not come back after a restart with the new files.
func (tx *Tx) Undo() (*Result, error) {
	if tx.root == nil {
		return nil, fmt.Errorf("transaction is closed")
	}
	if tx.committed == nil {
		return &Result{Message: "nothing to undo"}, nil
	}
	res, err := tx.revert([]*entry{tx.committed})
	if err == nil {
		tx.committed = nil
	}
	return res, err
}

type step struct {
	e *entry
	r *record
}

// revert undoes entries (oldest first) as one journaled change: the plan
// that puts each file's first backup back, refused when something else
// changed a file since; the commit; then the journal entries archived.
func (tx *Tx) revert(entries []*entry) (*Result, error) {
	if len(entries) == 0 {
		return &Result{Message: "nothing to revert: no usernsctl apply is recorded in " + tx.j.backups()}, nil
	}
	plan, dirs, err := tx.revertPlan(entries)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.id
	}
	e, applied, err := tx.commit(plan, kindRevert, ids, dirs)
	if err != nil {
		return nil, err
	}
	removed := 0
	if e == nil { // no file to restore: the directories still go
		for _, d := range dirs {
			ok, err := tx.root.RemoveEmptyDir(d)
			if err != nil {
				return nil, err
			}
			if ok {
				removed++
			}
		}
	}
	return tx.archiveReverted(ids, e, applied, removed)
}

// history is every journaled step of one file, oldest first.
func history(entries []*entry) (order []string, steps map[string][]step) {
	steps = map[string][]step{}
	for _, e := range entries {
		for i := range e.m.Files {
			r := &e.m.Files[i]
			if _, ok := steps[r.Path]; !ok {
				order = append(order, r.Path)
			}
			steps[r.Path] = append(steps[r.Path], step{e, r})
		}
	}
	return order, steps
}

// revertPlan puts every file back to its backup from the first apply, and
// lists the directories the applies created (deepest first). A file
// something else changed in between refuses the revert, unless Force.
func (tx *Tx) revertPlan(entries []*entry) (Plan, []string, error) {
	order, hist := history(entries)
	var (
		plan      Plan
		dirs      []string
		conflicts []string
	)
	for _, p := range order {
		steps := hist[p]
		first := steps[0]
		for _, s := range steps {
			dirs = append(dirs, s.r.Dirs...)
		}
		cur, err := readTarget(tx.root, p)
		if err != nil {
			return nil, nil, err
		}
		before, err := tx.j.loadBackup(first.e, first.r)
		if err != nil {
			return nil, nil, err
		}
		if cur.exists == first.r.Existed && (!cur.exists || bytes.Equal(cur.data, before)) {
			continue // already as it was
		}
		if problem := changedSince(p, cur, steps); problem != "" && !tx.opt.Force {
			conflicts = append(conflicts, problem+"; its content before usernsctl: "+backupWhere(first.e, first.r))
			continue
		}
		c := Change{Path: p, Old: nil, New: before}
		if cur.exists {
			c.Old = cur.data
		}
		if first.r.Existed {
			m := *first.r.Meta
			c.restore = &m
		}
		plan = append(plan, c)
	}
	if len(conflicts) > 0 {
		return nil, nil, fmt.Errorf("%w, nothing was changed: putting the backups back would discard changes made by something else:\n  - %s\nrestore these files by hand, or revert with --force to put usernsctl's backups back anyway (the current content is saved first)",
			ErrRevertRefused, strings.Join(conflicts, "\n  - "))
	}
	// Directories applies created go, deepest first, if empty.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return plan, slices.Compact(dirs), nil
}

// changedSince says how file p was changed by something other than the
// applies that wrote it ("" when only they did).
func changedSince(p string, cur target, steps []step) string {
	last := steps[len(steps)-1]
	if !matches(cur, last.r.NewExists, last.r.NewHash) {
		return fmt.Sprintf("%s was changed after usernsctl apply %s wrote it", p, last.e.id)
	}
	for k := 1; k < len(steps); k++ {
		prev, next := steps[k-1].r, steps[k].r
		if prev.NewExists != next.Existed || prev.NewHash != next.OldHash {
			return fmt.Sprintf("%s was changed between usernsctl applies %s and %s", p, steps[k-1].e.id, steps[k].e.id)
		}
	}
	return ""
}

// archiveReverted moves the reverted entries (and the revert's own, e) to
// the reverted directory and reports what was restored.
func (tx *Tx) archiveReverted(ids []string, e *entry, applied []Applied, removed int) (*Result, error) {
	for _, id := range ids {
		if err := tx.j.archive(id); err != nil {
			return nil, err
		}
	}
	res := &Result{Changed: e != nil || removed > 0}
	if e != nil {
		if err := tx.j.archive(e.id); err != nil {
			return nil, err
		}
		res.ID = e.id
		for i := range applied {
			if applied[i].Backup != "" {
				applied[i].Backup = path.Join(tx.j.reverted(), e.id, path.Base(applied[i].Backup))
			}
		}
		res.Changes = applied
	}
	res.Message = fmt.Sprintf("reverted %d usernsctl apply(s) (%s): %d file(s) restored", len(ids), strings.Join(ids, ", "), len(applied))
	if !res.Changed {
		res.Message = fmt.Sprintf("nothing to revert: the files of usernsctl apply(s) %s are already as they were; journal entries moved to %s", strings.Join(ids, ", "), tx.j.reverted())
	}
	return res, nil
}
