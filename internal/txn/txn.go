// Package txn changes host files for `usernsctl apply` and `usernsctl
// revert`, with the guarantees a production node needs:
//
//   - Atomic: each file is replaced by rename(2) of a fsynced temporary
//     file in the same directory, then the directory is fsynced. Mode,
//     owner, group, SELinux label and ACL of the replaced file are kept.
//     A symlink, directory or device at a target is refused, never
//     replaced.
//   - Confined: paths are resolved inside the host root (--root DIR), so a
//     symlink in the tree cannot send a write outside DIR.
//   - Locked: a transaction holds usernsctl's own lock (applies and
//     reverts run one at a time) and, for the account files, the locks
//     shadow-utils and glibc take (see package locks), so useradd and
//     usermod never interleave with it. usernsctl's lock is an flock on
//     /var/lib/usernsctl/lock rather than in /run: it must exist under
//     --root DIR as well, and it guards the journal it sits next to.
//   - Compare-and-swap: a change says what it was planned from (Old); if
//     the file no longer holds exactly that, nothing is written.
//   - Journaled: before the first target is touched, the exact previous
//     bytes, mode and owner of every file (or "did not exist") are saved
//     under /var/lib/usernsctl/backups/<id>/ with a manifest (layout in
//     journal.go; <id> is a sequence number and a UTC time). Killing the
//     process at any moment leaves each file old or new, never truncated
//     or mixed; the next transaction finds the interrupted entry and rolls
//     it back, so an apply is all or nothing.
//   - Revertible: Revert restores every file to its state before the
//     first usernsctl apply that is still recorded (undoing all applies,
//     newest first) and removes files and directories applies created.
//     A file that someone else changed after usernsctl wrote it is not
//     overwritten unless forced. A second Revert finds nothing to do.
//
// Use: Begin (takes the locks, recovers an interrupted run), Read the
// files to plan from, Commit a Plan, optionally Undo it (a daemon that does
// not come back after a restart), Close. Hold a transaction only for the
// read-plan-write: while it holds the account-file locks, useradd and
// usermod wait for it.
package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/inroot"
	"github.com/usernsctl/usernsctl/internal/locks"
	"github.com/usernsctl/usernsctl/internal/udiff"
)

// DefaultStateDir holds the lock and the journal (host path).
const DefaultStateDir = "/var/lib/usernsctl"

// Actions of a change, as the apply JSON reports them.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

var (
	// ErrConflict: a file no longer holds what the change was planned
	// from.
	ErrConflict = errors.New("changed since it was read")
	// ErrSymlink: the target is a symbolic link.
	ErrSymlink = errors.New("is a symbolic link")
	// ErrNotRegular: the target is a directory, device, FIFO or socket.
	ErrNotRegular = errors.New("is not a regular file")
)

// Change replaces one host file.
type Change struct {
	Path string // host path, absolute
	// Old is the content the change was planned from; nil means the file
	// does not exist. Note that an empty file is []byte{}, not nil: plan
	// from Tx.Read, which keeps the difference.
	Old []byte
	// New is the content to write; nil removes the file.
	New []byte
	// Mode is the permission bits of a created file (0 means 0644). A
	// replaced file keeps its own mode, owner and group.
	Mode fs.FileMode
	// Check, when set, runs just before this change is written, after the
	// plan's earlier changes are in place: a validator that needs them
	// (dockerd --validate needs the remap user's new subuid lines) vets
	// the candidate content. An error aborts the commit and rolls every
	// written file back.
	Check func(candidate []byte) error

	restore *meta // revert: the exact mode and owner to put back
}

// Action is ActionCreate, ActionUpdate, ActionDelete, or "" when the
// change changes nothing.
func (c Change) Action() string {
	switch {
	case c.Old == nil && c.New == nil:
		return ""
	case c.Old == nil:
		return ActionCreate
	case c.New == nil:
		return ActionDelete
	case bytes.Equal(c.Old, c.New):
		return ""
	}
	return ActionUpdate
}

// Diff is the change as a unified diff with the host path in the headers
// ("/dev/null" for the missing side of a created or removed file).
func (c Change) Diff() string {
	if c.Action() == "" {
		return ""
	}
	from, to := c.Path, c.Path
	if c.Old == nil {
		from = udiff.DevNull
	}
	if c.New == nil {
		to = udiff.DevNull
	}
	old, cur := c.Old, c.New
	if secret(c.Path) {
		old, cur = maskHashes(old), maskHashes(cur)
	}
	if d := udiff.Unified(from, to, old, cur); d != "" {
		return d
	}
	// Creating or removing an empty file: no lines, but still a change.
	return "--- " + from + "\n+++ " + to + "\n"
}

// secret reports whether a file holds password hashes (field 2 of every
// line): /etc/shadow and /etc/gshadow.
func secret(p string) bool {
	p = path.Clean(p)
	return p == "/etc/shadow" || p == "/etc/gshadow"
}

// maskHashes hides the password field of shadow and gshadow lines, so that
// no diff (shown, or printed as JSON to a log) carries another account's
// hash; locked and empty markers ("!", "*", "!*", "") are kept: they say
// what an account can do.
func maskHashes(b []byte) []byte {
	if b == nil {
		return nil
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	var out bytes.Buffer
	for _, l := range lines {
		f := bytes.SplitN(l, []byte(":"), 3)
		if len(f) == 3 && len(bytes.Trim(f[1], "!*")) > 0 {
			out.Write(f[0])
			out.WriteString(":<hash hidden>:")
			out.Write(f[2])
			continue
		}
		out.Write(l)
	}
	return out.Bytes()
}

// Plan is an ordered list of changes, written in this order.
type Plan []Change

// Diff is the unified diff of every change in the plan.
func (p Plan) Diff() string {
	var sb strings.Builder
	for _, c := range p {
		sb.WriteString(c.Diff())
	}
	return sb.String()
}

// Changed reports whether committing the plan would change any file.
func (p Plan) Changed() bool {
	return slices.ContainsFunc(p, func(c Change) bool { return c.Action() != "" })
}

// Options configure a transaction.
type Options struct {
	StateDir string        // host path; DefaultStateDir when empty
	Timeout  time.Duration // how long to wait for each lock; locks.DefaultTimeout when 0
	// Force makes Revert put the backups back even over files changed
	// since usernsctl wrote them (their current content is saved first).
	Force bool
}

// Applied is one file a commit or revert changed.
type Applied struct {
	Path   string `json:"path"`
	Action string `json:"action"`
	// Backup is the host path of the file's previous content ("" when the
	// file did not exist).
	Backup string `json:"backup,omitempty"`
	Diff   string `json:"diff"`
}

// Result says what a commit or revert did.
type Result struct {
	ID      string    // journal entry ("" when nothing changed)
	Changed bool      // false: no byte of any file was touched
	Changes []Applied // in the order written
	Message string    // one line for people
}

// Tx is a transaction: locks held, journal recovered.
type Tx struct {
	ctx       context.Context
	opt       Options
	root      *inroot.Root
	j         *journal
	held      []*locks.Lock
	shadow    map[string]bool // account files whose shadow locks are held
	recovered []string
	committed *entry
	used      bool
}

// Begin takes usernsctl's lock and the shadow-utils locks of every account
// file among paths (and among the files of an interrupted run), then
// rolls back a run that was interrupted. Pass every file the plan may
// change.
func Begin(ctx context.Context, h *host.Host, opt Options, paths ...string) (*Tx, error) {
	if opt.StateDir == "" {
		opt.StateDir = DefaultStateDir
	}
	if opt.Timeout <= 0 {
		opt.Timeout = locks.DefaultTimeout
	}
	state, err := inroot.Clean(opt.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	opt.StateDir = state
	want := make([]string, 0, len(paths))
	for _, p := range paths {
		c, err := inroot.Clean(p)
		if err != nil {
			return nil, err
		}
		want = append(want, c)
	}
	root, err := inroot.Open(h.Root())
	if err != nil {
		return nil, err
	}
	tx := &Tx{ctx: ctx, opt: opt, root: root, j: &journal{r: root, state: state}, shadow: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			tx.Close()
		}
	}()
	if err := tx.j.init(); err != nil {
		return nil, err
	}
	l, err := locks.Tool(ctx, root, path.Join(state, lockName), opt.Timeout)
	if err != nil {
		return nil, err
	}
	tx.held = append(tx.held, l)
	entries, err := tx.j.entries()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.m != nil {
			for _, r := range e.m.Files {
				want = append(want, r.Path)
			}
		}
	}
	sh, err := locks.Shadow(ctx, root, want, opt.Timeout)
	if err != nil {
		return nil, err
	}
	tx.held = append(tx.held, sh...)
	for _, p := range want {
		if locks.IsShadowFile(p) {
			tx.shadow[p] = true
		}
	}
	if err := tx.recover(entries); err != nil {
		return nil, err
	}
	ok = true
	return tx, nil
}

// Recovered describes interrupted runs Begin rolled back or finished.
func (tx *Tx) Recovered() []string { return tx.recovered }

// Read returns the content of host file p as the transaction sees it; nil
// when it does not exist. A symlink or non-regular file is an error.
func (tx *Tx) Read(p string) ([]byte, error) {
	p, err := inroot.Clean(p)
	if err != nil {
		return nil, err
	}
	t, err := readTarget(tx.root, p)
	if err != nil || !t.exists {
		return nil, err
	}
	return t.data, nil
}

// Commit writes the plan: it checks every file still holds Change.Old,
// saves the previous state of each, replaces them in order, and records
// the journal entry. A plan that changes nothing touches nothing and
// records nothing. On error no file is left changed: what was written is
// rolled back before Commit returns (or, if the process dies, by the next
// Begin).
func (tx *Tx) Commit(p Plan) (*Result, error) {
	if tx.root == nil {
		return nil, errors.New("transaction is closed")
	}
	if tx.used {
		return nil, errors.New("a transaction commits once: one journal entry per apply")
	}
	tx.used = true
	e, applied, err := tx.commit(p, kindApply, nil, nil)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return &Result{Message: "nothing to change"}, nil
	}
	tx.committed = e
	return &Result{ID: e.id, Changed: true, Changes: applied,
		Message: fmt.Sprintf("changed %d file(s); backups in %s", len(applied), e.dir)}, nil
}

// Close releases the locks. It is safe to call more than once.
func (tx *Tx) Close() error {
	if tx.root == nil {
		return nil
	}
	err := locks.ReleaseAll(tx.held)
	tx.held = nil
	tx.root.Close()
	tx.root = nil
	return err
}

// Commit is Begin, Tx.Commit and Close for a plan made without reading
// through a transaction.
func Commit(ctx context.Context, h *host.Host, opt Options, p Plan) (*Result, error) {
	paths := make([]string, 0, len(p))
	for _, c := range p {
		paths = append(paths, c.Path)
	}
	tx, err := Begin(ctx, h, opt, paths...)
	if err != nil {
		return nil, err
	}
	res, err := tx.Commit(p)
	if cerr := tx.Close(); err == nil && cerr != nil {
		return res, cerr
	}
	return res, err
}

// commit is Commit for applies and reverts. removeDirs (reverts) are
// removed, when empty, after the files. Its steps: the plan's changes,
// compare-and-swap against the files, the journal (backups, then the
// manifest that makes them count), the writes, the commit mark.
func (tx *Tx) commit(p Plan, kind string, reverts, removeDirs []string) (*entry, []Applied, error) {
	changes, err := tx.changesOf(p)
	if err != nil || len(changes) == 0 {
		return nil, nil, err
	}
	recs, olds, err := tx.compareAndSwap(changes, kind)
	if err != nil {
		return nil, nil, err
	}
	e, err := tx.journalEntry(kind, reverts, recs, olds)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.writeAll(e, changes, recs, removeDirs); err != nil {
		if rerr := tx.rollback(e); rerr != nil {
			return nil, nil, fmt.Errorf("%w; rolling back also failed: %v (the next usernsctl run retries)", err, rerr)
		}
		if rerr := tx.j.remove(e); rerr != nil {
			return nil, nil, fmt.Errorf("%w; rolled back, but removing journal entry %s failed: %v", err, e.dir, rerr)
		}
		return nil, nil, fmt.Errorf("%w; every file was rolled back", err)
	}
	at("committed")

	applied := make([]Applied, len(changes))
	for i, c := range changes {
		applied[i] = Applied{Path: c.Path, Action: c.Action(), Diff: c.Diff()}
		if recs[i].Existed {
			applied[i].Backup = path.Join(e.dir, recs[i].Backup)
		}
	}
	return e, applied, nil
}

// changesOf is the plan's real changes, each path clean and once, every
// account file among them locked by Begin.
func (tx *Tx) changesOf(p Plan) ([]Change, error) {
	var changes []Change
	seen := map[string]bool{}
	for _, c := range p {
		clean, err := inroot.Clean(c.Path)
		if err != nil {
			return nil, err
		}
		if seen[clean] {
			return nil, fmt.Errorf("%s appears twice in one plan", clean)
		}
		seen[clean] = true
		c.Path = clean
		if c.Action() == "" {
			continue
		}
		if locks.IsShadowFile(clean) && !tx.shadow[clean] {
			return nil, fmt.Errorf("%s is an account file but its lock is not held: pass it to Begin", clean)
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// compareAndSwap checks that every file is still what the plan was made
// from, before anything is written, and returns the journal records and
// the current contents to back up.
func (tx *Tx) compareAndSwap(changes []Change, kind string) ([]record, [][]byte, error) {
	recs := make([]record, len(changes))
	olds := make([][]byte, len(changes))
	for i, c := range changes {
		cur, err := readTarget(tx.root, c.Path)
		if err != nil {
			return nil, nil, err
		}
		if !sameState(cur, c.Old) {
			return nil, nil, fmt.Errorf("%s %w: planned from %s, now %s (another program wrote it); nothing was written, run usernsctl again",
				c.Path, ErrConflict, describe(c.Old != nil, c.Old), describe(cur.exists, cur.data))
		}
		r := record{Path: c.Path, Action: c.Action(), Existed: cur.exists, NewExists: c.New != nil}
		if cur.exists {
			m := cur.meta
			r.Backup, r.Meta, r.OldHash = backupName(i, c.Path), &m, hash(cur.data)
			olds[i] = cur.data
		}
		if c.New != nil {
			r.NewHash = hash(c.New)
			if kind == kindApply {
				r.Dirs = tx.missingDirs(path.Dir(c.Path))
			}
		}
		recs[i] = r
	}
	return recs, olds, nil
}

// journalEntry saves the backups, then the pending manifest that makes
// them count: from then on a crash rolls back.
func (tx *Tx) journalEntry(kind string, reverts []string, recs []record, olds [][]byte) (*entry, error) {
	id, err := tx.j.nextID(time.Now())
	if err != nil {
		return nil, err
	}
	e, err := tx.j.create(id)
	if err != nil {
		return nil, err
	}
	for i, r := range recs {
		if r.Existed {
			if err := tx.j.saveBackup(e, r.Backup, olds[i]); err != nil {
				tx.j.remove(e)
				return nil, err
			}
		}
	}
	e.m = &manifest{Schema: schema, ID: id, Kind: kind, State: statePending, Time: time.Now().UTC(),
		PID: os.Getpid(), Reverts: reverts, Files: recs}
	if err := tx.j.writeManifest(e); err != nil {
		tx.j.remove(e)
		return nil, err
	}
	return e, nil
}

// writeAll writes every change (after its Check), removes removeDirs and
// marks the entry committed. An error leaves the caller to roll back.
func (tx *Tx) writeAll(e *entry, changes []Change, recs []record, removeDirs []string) error {
	for i, c := range changes {
		if c.Check != nil {
			if err := c.Check(c.New); err != nil {
				return fmt.Errorf("%s: %w", c.Path, err)
			}
		}
		if err := tx.write(c, &recs[i]); err != nil {
			return err
		}
		at("change.done")
	}
	for _, d := range removeDirs {
		if _, err := tx.root.RemoveEmptyDir(d); err != nil {
			return err
		}
	}
	e.m.State = stateCommitted
	return tx.j.writeManifest(e)
}

// write puts one change in place.
func (tx *Tx) write(c Change, r *record) error {
	dir, base := path.Split(c.Path)
	if c.New == nil {
		d, err := tx.root.OpenDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer d.Close()
		return removeAt(d, c.Path, base)
	}
	if _, err := tx.root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	at("dirs.created")
	d, err := tx.root.OpenDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	m := newMeta(c.Mode)
	if r.Existed {
		m = *r.Meta
	}
	if c.restore != nil {
		m = *c.restore
	}
	return writeAt(d, c.Path, base, c.New, m)
}

// missingDirs lists the directories above a file that do not exist yet,
// outermost first.
func (tx *Tx) missingDirs(dir string) []string {
	var out []string
	for d := path.Clean(dir); d != "/"; d = path.Dir(d) {
		f, err := tx.root.OpenDir(d)
		if err == nil {
			f.Close()
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
		out = append([]string{d}, out...)
	}
	return out
}

func sameState(t target, content []byte) bool {
	if content == nil {
		return !t.exists
	}
	return t.exists && bytes.Equal(t.data, content)
}

func describe(exists bool, data []byte) string {
	if !exists {
		return "absent"
	}
	return fmt.Sprintf("%d bytes, sha256 %s", len(data), hash(data)[:12])
}

// recover finishes what an interrupted run left in the journal.
func (tx *Tx) recover(entries []*entry) error {
	for _, e := range entries {
		switch {
		case e.m == nil:
			// Died while saving backups: no target was touched.
			if err := tx.j.remove(e); err != nil {
				return err
			}
		case e.m.State == statePending:
			if err := tx.rollback(e); err != nil {
				return fmt.Errorf("usernsctl %s %s was interrupted and cannot be rolled back: %w", e.m.Kind, e.dir, err)
			}
			if err := tx.j.remove(e); err != nil {
				return err
			}
			tx.recovered = append(tx.recovered, fmt.Sprintf("rolled back the interrupted usernsctl %s %s", e.m.Kind, e.id))
		case e.m.Kind == kindRevert:
			// Died after a revert was committed, while archiving.
			for _, id := range e.m.Reverts {
				if err := tx.j.archive(id); err != nil {
					return err
				}
			}
			if err := tx.j.archive(e.id); err != nil {
				return err
			}
			tx.recovered = append(tx.recovered, fmt.Sprintf("finished the interrupted usernsctl revert %s", e.id))
		}
	}
	return nil
}

// rollback puts every file of a pending entry back to its previous state.
// Each file is old or new (writes are atomic); one that is neither was
// changed by someone else since, and is left alone with an error.
func (tx *Tx) rollback(e *entry) error {
	var errs []error
	for i := len(e.m.Files) - 1; i >= 0; i-- {
		r := &e.m.Files[i]
		if err := tx.rollbackFile(e, r); err != nil {
			errs = append(errs, err)
		}
		at("rollback.file")
	}
	return errors.Join(errs...)
}

func (tx *Tx) rollbackFile(e *entry, r *record) error {
	dir, base := path.Split(r.Path)
	cur, err := readTarget(tx.root, r.Path)
	if err != nil {
		return err
	}
	isOld := matches(cur, r.Existed, r.OldHash)
	if !isOld && !matches(cur, r.NewExists, r.NewHash) {
		return fmt.Errorf("%s holds neither its previous nor its new content: someone changed it since; its previous content is in %s",
			r.Path, backupWhere(e, r))
	}
	if !isOld {
		c := Change{Path: r.Path, Old: cur.data, restore: r.Meta}
		if r.Existed {
			data, err := tx.j.loadBackup(e, r)
			if err != nil {
				return err
			}
			c.New = data
		}
		if err := tx.write(c, &record{Existed: cur.exists, Meta: &cur.meta}); err != nil {
			return err
		}
	}
	if d, err := tx.root.OpenDir(dir); err == nil {
		removeTemps(d, base)
		d.Close()
	}
	if e.m.Kind == kindApply {
		for i := len(r.Dirs) - 1; i >= 0; i-- {
			if _, err := tx.root.RemoveEmptyDir(r.Dirs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func matches(t target, exists bool, h string) bool {
	if t.exists != exists {
		return false
	}
	return !exists || hash(t.data) == h
}

func backupWhere(e *entry, r *record) string {
	if !r.Existed {
		return "nowhere (it did not exist)"
	}
	return path.Join(e.dir, r.Backup)
}
