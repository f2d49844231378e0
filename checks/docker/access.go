package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/remap"
)

// blocker is a directory above the remapped root that gives the remapped
// root no search (x) permission.
type blocker struct {
	dir       string
	mode      fs.FileMode
	uid, gid  int
	haveOwner bool
}

func (b blocker) String() string {
	if !b.haveOwner {
		return fmt.Sprintf("%s (mode %04o)", b.dir, b.mode.Perm())
	}
	return fmt.Sprintf("%s (mode %04o, owner %d:%d)", b.dir, b.mode.Perm(), b.uid, b.gid)
}

// checkRemappedRootAccess is R22: with remap on, dockerd creates
// <data-root>/<uid>.<gid> and refuses to start when any existing directory
// above it, up to (not including) /, gives the remapped root no x: neither
// o+x, nor owner = the remapped uid with u+x, nor group = the remapped gid
// with g+x (moby daemon/daemon_unix.go setupDaemonRoot, canAccess; the
// data root itself passes, dockerd makes it 0710 with the remapped gid).
func checkRemappedRootAccess(ctx context.Context, env *checks.Env) checks.Result {
	dr := facts.DockerDataRootRealOf(env)
	if dr.Err != nil {
		return checks.Skipf("the data root %s does not resolve to a directory (see docker.data_root)", dr.Configured)
	}
	root := dr.Real
	da := facts.DockerAccountOf(ctx, env)
	uid, gid := -1, -1
	target := path.Join(root, "<uid>.<gid>")
	known := false
	switch {
	case errors.Is(da.Err, remap.ErrRoot):
		uid, gid, known = 0, 0, true // R9: the pair stays 0:0, the check still runs
		target = path.Join(root, remap.RemappedDir(0, 0))
	case da.Err != nil:
		return checks.Skipf("the remap account is unknown, so its ids are too (see docker.userns_remap): %v", da.Err)
	default:
		s := facts.SubIDsOf(env)
		u := facts.DockerSubIDLines(env, s.UID.File, da.Account)
		g := facts.DockerSubIDLines(env, s.GID.File, da.Account)
		if len(u) > 0 && len(g) > 0 {
			uid, gid, known = int(u[0].Range.Start), int(g[0].Range.Start), true
			target = path.Join(root, remap.RemappedDir(uid, gid))
		}
	}
	r := checks.Result{}.With("data_root", root).With("remapped_root", target)
	if known {
		r = r.With("remapped_uid", uid).With("remapped_gid", gid)
	}
	var checked []string
	var blocked []blocker
	for dir := path.Dir(root); dir != "/" && dir != "."; dir = path.Dir(dir) {
		fi, err := env.Host.Stat(dir)
		if err != nil {
			continue // dockerd creates it 0711
		}
		checked = append(checked, dir)
		b := blocker{dir: dir, mode: fi.Mode()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			b.uid, b.gid, b.haveOwner = int(st.Uid), int(st.Gid), true
		}
		if canAccess(b, uid, gid) {
			continue
		}
		blocked = append(blocked, b)
	}
	r = r.With("checked", checked)
	if len(blocked) == 0 {
		if len(checked) == 0 {
			return withEvidence(r, checks.Passf("no directory above %s exists yet: dockerd creates them searchable (0711)", root))
		}
		return withEvidence(r, checks.Passf("every directory above %s gives the remapped root search permission: %s", target, strings.Join(checked, ", ")))
	}
	var list, fixes []string
	for _, b := range blocked {
		list = append(list, b.String())
		fixes = append(fixes, "chmod o+x "+b.dir)
	}
	_, when := remapState(env)
	ids := fmt.Sprintf("uid %d, gid %d", uid, gid)
	if !known {
		ids = "whose ids are not allocated yet, so only o+x counts"
	}
	r.Remedy = fmt.Sprintf("`%s`, or move data-root to a directory whose parents are searchable by everyone (e.g. /var/lib/docker)", strings.Join(fixes, " && "))
	res := checks.Failf(r.Remedy,
		"%s gives no search permission (o+x, or u+x/g+x for an owner or group of the remapped root, %s) to the remapped root: %s dockerd refuses to start (`a subdirectory in your graphroot path (%s) restricts access to the remapped root uid/gid; please fix by allowing 'o+x' permissions on existing directories`)",
		strings.Join(list, " and "), ids, when, target)
	return withEvidence(r, res).With("blocking", list)
}

// canAccess is moby's canAccess: world x, or owner x for the uid, or
// group x for the gid.
func canAccess(b blocker, uid, gid int) bool {
	perm := b.mode.Perm()
	switch {
	case perm&0o001 != 0:
		return true
	case !b.haveOwner:
		return false
	case uid >= 0 && b.uid == uid && perm&0o100 != 0:
		return true
	case gid >= 0 && b.gid == gid && perm&0o010 != 0:
		return true
	}
	return false
}
