// Package apply changes a host for the chosen target — subordinate IDs,
// the remap account, daemon.json, the containerd drop-in, kubelet ranges,
// sysctls — and reverts it. Planning only reads; every write goes through
// internal/txn (atomic, locked, journaled, revertible).
package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/moby/sys/user"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/logindefs"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/txn"
	"github.com/usernsctl/usernsctl/remap"
)

// Account and ID files (host paths).
const (
	passwdFile  = "/etc/passwd"
	groupFile   = "/etc/group"
	shadowFile  = "/etc/shadow"
	gshadowFile = "/etc/gshadow"
	subuidFile  = "/etc/subuid"
	subgidFile  = "/etc/subgid"
)

// Reader reads a host file for planning: nil when it does not exist, an
// empty non-nil slice for an empty file.
type Reader func(p string) ([]byte, error)

// hostReader reads without locks, for --dry-run (which writes nothing and
// so takes no lock and creates no state directory).
func hostReader(env *checks.Env) Reader {
	return func(p string) ([]byte, error) {
		b, err := env.Host.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err == nil && b == nil {
			b = []byte{}
		}
		return b, err
	}
}

// LiveChange is a kernel setting changed in place (a sysctl, a module
// parameter): not a file, so not in the transaction. Before is restored
// by revert.
type LiveChange struct {
	Path   string `json:"path"`
	Before string `json:"before"`
	Value  string `json:"value"`
	Why    string `json:"why"`
}

// plan accumulates one apply's edits: each file read once (through the
// transaction when not a dry run) and rewritten in memory.
type plan struct {
	env  *checks.Env
	read Reader

	order []string
	old   map[string][]byte
	cur   map[string][]byte
	mode  map[string]fs.FileMode
	check map[string]func([]byte) error

	live    []LiveChange
	notes   []string
	daemons []string

	// parsed caches
	uid, gid *subid.File
	users    []user.User
	groups   []user.Group
}

func newPlan(env *checks.Env, read Reader) *plan {
	return &plan{env: env, read: read, old: map[string][]byte{}, cur: map[string][]byte{},
		mode: map[string]fs.FileMode{}, check: map[string]func([]byte) error{}}
}

// get returns the file's content as planned so far (nil: absent).
func (p *plan) get(path string) ([]byte, error) {
	if b, ok := p.cur[path]; ok {
		return b, nil
	}
	b, err := p.read(path)
	if err != nil {
		return nil, err
	}
	p.order = append(p.order, path)
	p.old[path], p.cur[path] = b, b
	return b, nil
}

// seed gives get content already read: a dry run takes no locks, so
// reading what the check read moments ago again buys nothing (the real
// apply reads every file again under the locks).
func (p *plan) seed(path string, b []byte) {
	if _, ok := p.cur[path]; ok {
		return
	}
	p.order = append(p.order, path)
	p.old[path], p.cur[path] = b, b
}

// set plans new content for a file read with get.
func (p *plan) set(path string, b []byte, mode fs.FileMode) {
	if _, ok := p.cur[path]; !ok {
		panic("apply: set before get: " + path)
	}
	p.cur[path] = b
	if mode != 0 {
		p.mode[path] = mode
	}
}

func (p *plan) note(format string, a ...any) { p.notes = append(p.notes, fmt.Sprintf(format, a...)) }

// daemonBinary is the program whose presence says a daemon is installed.
var daemonBinary = map[string]string{"docker": "dockerd", "containerd": "containerd", "kubelet": "kubelet"}

// restart records that daemon must restart for the change to take effect
// — if it is installed at all: on a node prepared before `kubeadm join`
// there is no kubelet yet, and it reads the new range when it first starts.
func (p *plan) restart(daemon string) {
	for _, d := range p.daemons {
		if d == daemon {
			return
		}
	}
	if bin := daemonBinary[daemon]; bin != "" && !p.env.Run.Installed(bin) {
		p.note("%s is not installed: nothing to restart; it reads the new settings when it first starts", bin)
		return
	}
	p.daemons = append(p.daemons, daemon)
}

// writeRank orders the writes: groups before users (a user's group
// exists before it does), accounts before their ID ranges, ranges before
// the daemon configs that name them (dockerd --validate needs them), the
// state file last (its check confirms the whole result).
func writeRank(path string) int {
	switch path {
	case groupFile, gshadowFile:
		return 0
	case passwdFile, shadowFile:
		return 1
	case subuidFile, subgidFile:
		return 2
	case stateFile:
		return 4
	}
	return 3
}

// changes is the transaction plan in write order (see writeRank); files of
// one rank keep the order they were first read in.
func (p *plan) changes() txn.Plan {
	var out txn.Plan
	for rank := 0; rank <= 4; rank++ {
		for _, path := range p.order {
			if writeRank(path) == rank {
				out = append(out, txn.Change{Path: path, Old: p.old[path], New: p.cur[path], Mode: p.mode[path], Check: p.check[path]})
			}
		}
	}
	return out
}

// changed reports whether any file or live setting would change.
func (p *plan) changed() bool {
	return p.changes().Changed() || len(p.live) > 0
}

// subids parses both ID files once (missing files are empty).
func (p *plan) subids() (*subid.File, *subid.File, error) {
	if p.uid != nil {
		return p.uid, p.gid, nil
	}
	var files [2]*subid.File
	checked := facts.SubIDsOf(p.env)
	for i, path := range []string{subuidFile, subgidFile} {
		b, err := p.get(path)
		if err != nil {
			return nil, nil, inputErr(err)
		}
		// The check run parsed the same bytes moments ago (before the
		// locks): reuse that parse when nothing changed since.
		if seen := []facts.SubIDFile{checked.UID, checked.GID}[i]; seen.File != nil && b != nil && bytes.Equal(b, seen.File.Source()) {
			files[i] = seen.File.Clone()
			continue
		}
		f, err := subid.Parse(bytes.NewBuffer(b), path)
		if err != nil {
			return nil, nil, inputErr(err)
		}
		files[i] = f
	}
	p.uid, p.gid = files[0], files[1]
	return p.uid, p.gid, nil
}

// flushSubids renders the ID files into the plan.
func (p *plan) flushSubids() {
	if p.uid == nil {
		return
	}
	for _, f := range []*subid.File{p.uid, p.gid} {
		f.EnsureFinalNewline()
		p.set(f.Name, f.Bytes(), 0o644)
	}
}

// accounts parses /etc/passwd and /etc/group as planned so far.
func (p *plan) accounts() ([]user.User, []user.Group, error) {
	if p.users != nil {
		return p.users, p.groups, nil
	}
	pw, err := p.get(passwdFile)
	if err != nil {
		return nil, nil, inputErr(err)
	}
	gr, err := p.get(groupFile)
	if err != nil {
		return nil, nil, inputErr(err)
	}
	if pw == nil || gr == nil {
		return nil, nil, inputErr(fmt.Errorf("%s and %s must exist", passwdFile, groupFile))
	}
	users, err := user.ParsePasswd(bytes.NewReader(pw))
	if err != nil {
		return nil, nil, inputErr(fmt.Errorf("%s: %w", passwdFile, err))
	}
	groups, err := user.ParseGroup(bytes.NewReader(gr))
	if err != nil {
		return nil, nil, inputErr(fmt.Errorf("%s: %w", groupFile, err))
	}
	p.users, p.groups = users, groups
	return users, groups, nil
}

// accountIDs are every uid and gid in use (planned accounts included).
func (p *plan) accountIDs() (uids, gids []int) {
	for _, u := range p.users {
		uids = append(uids, u.Uid)
	}
	for _, g := range p.groups {
		gids = append(gids, g.Gid)
	}
	return uids, gids
}

// inputErr marks err as bad input (exit 2, nothing written): a file apply
// must read does not parse, a flag value it cannot use.
func inputErr(err error) error {
	if _, ok := errs.AsInput(err); ok {
		return err
	}
	return &errs.Input{Msg: err.Error(), Err: err}
}

// refusal turns remap's verdicts into apply's: a refusal stays one, bad
// ID files are bad input.
func refusal(err error) error {
	var re *errs.Refusal
	if errors.As(err, &re) {
		return err
	}
	if errors.Is(err, remap.ErrBadInput) {
		return inputErr(err)
	}
	return err
}

// loginDefs is /etc/login.defs for allocation. A setting that does not
// parse is bad input: allocating with shadow's defaults in its place could
// put ranges where the operator's limits forbid them.
func (p *plan) loginDefs() (*logindefs.Defs, error) {
	l := facts.LoginDefsOf(p.env)
	if l.Err != nil {
		return nil, inputErr(fmt.Errorf("%w\nfix the setting in %s, then run apply again; nothing was written", l.Err, l.Path))
	}
	d := l.Defs
	for _, lim := range []struct {
		min, max   logindefs.Setting
		minK, maxK string
	}{{d.SubUIDMin, d.SubUIDMax, "SUB_UID_MIN", "SUB_UID_MAX"}, {d.SubGIDMin, d.SubGIDMax, "SUB_GID_MIN", "SUB_GID_MAX"}} {
		if lim.min.Value > lim.max.Value {
			at := lim.min
			if at.Line == 0 {
				at = lim.max
			}
			return nil, inputErr(&errs.Input{Pos: errs.At(l.Path, at.Line),
				Msg: fmt.Sprintf("%s %d (%s) is above %s %d (%s): no range fits between them", lim.minK, lim.min.Value, d.Where(lim.min), lim.maxK, lim.max.Value, d.Where(lim.max)),
				Fix: fmt.Sprintf("set %s below %s in %s (shadow's defaults: 100000 and 600100000), then run apply again; nothing was written", lim.minK, lim.maxK, l.Path)})
		}
	}
	return d, nil
}

// dockerPath is the daemon.json apply edits: the file in effect, through
// its symbolic links.
func dockerPath(env *checks.Env) string {
	return facts.DockerConfigOf(env).Target
}

func containerdPath(ctx context.Context, env *checks.Env) string {
	return facts.ContainerdConfigOf(ctx, env).Path
}
