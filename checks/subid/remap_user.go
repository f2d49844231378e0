package subid

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/rules"
)

// Docker's limits on the remap user's ranges.
const (
	// dockerMinIDs: images carry files owned by ids up to 65534 (nobody).
	dockerMinIDs = rules.DockerMinIDCount
	// dockerMaxRanges: dockerd uses at most this many ranges.
	dockerMaxRanges = 5
)

const applyDocker = "`usernsctl apply --target docker`"

func checkRemapUser(ctx context.Context, env *checks.Env) checks.Result {
	dr := facts.DockerRemapOf(env)
	spec, source, err := dr.Spec, dr.Source, dr.Err
	if errors.Is(err, remap.ErrRoot) {
		return checks.Failf(`set "userns-remap": "default" (user dockremap) or another unprivileged user`, "%v", err)
	}
	if err != nil {
		return checks.Warnf("fix userns-remap in daemon.json (forms: default, USER, USER:GROUP, UID, UID:GID) or name the user with --user",
			"cannot tell the remap user: %v", err)
	}
	acc := facts.AccountsOf(env)
	if acc.Err != nil {
		return checks.Warnf("make /etc/passwd and /etc/group readable regular files",
			"cannot resolve the remap user %q (%s): %v", spec.Raw, source, acc.Err)
	}
	return judgeRemap(ctx, env, spec, source, acc)
}

// judgeRemap checks the remap user's ranges the way dockerd reads them:
// /etc/subuid and /etc/subgid directly (no NSS), matching the owner field
// against the user's name and its uid, in file order.
func judgeRemap(ctx context.Context, env *checks.Env, spec remap.Spec, source string, acc *facts.Accounts) checks.Result {
	a, err := spec.Resolve(acc.Users, acc.Groups)
	if errors.Is(err, remap.ErrRoot) {
		return checks.Failf(`set "userns-remap": "default" (user dockremap) or another unprivileged user`, "%v (%s)", err, source)
	}
	if err != nil {
		return checks.Warnf("fix userns-remap in daemon.json or --user", "cannot resolve the remap user %q (%s): %v", spec.Raw, source, err)
	}
	who := a.User
	if who == "" {
		who = "uid " + strconv.Itoa(a.UID)
	}
	ev := func(r checks.Result) checks.Result {
		return r.With("spec", spec.Raw).With("source", source).With("user", a.User).With("uid", a.UID).With("user_exists", a.Exists)
	}

	if !a.Exists && !spec.Default {
		return ev(checks.Failf(fmt.Sprintf("create the account (`useradd --system --no-create-home --shell /usr/sbin/nologin %s`) or run `usernsctl apply --target docker --user %s`", a.User, spec.Raw),
			"the remap user %s (userns-remap %q, %s) is not in %s: dockerd cannot build the ID mappings and does not start", who, spec.Raw, source, facts.PasswdFile))
	}

	s := facts.SubIDsOf(env)
	keys := a.SubIDKeys()
	uidLines, gidLines := linesFor(s.UID.File, keys), linesFor(s.GID.File, keys)
	r := ev(checks.Result{}).With("subuid_ranges", rangeStrings(uidLines)).With("subgid_ranges", rangeStrings(gidLines))

	if len(uidLines) == 0 || len(gidLines) == 0 {
		return missingRanges(ctx, env, r, remapUser{spec, source, a, who, s, uidLines, gidLines})
	}

	var fails, warns []string
	var remedy []string
	for _, side := range []struct {
		path  string
		f     *subid.File
		lines []*subid.Line
		ids   string
	}{{s.UID.Path, s.UID.File, uidLines, "uid"}, {s.GID.Path, s.GID.File, gidLines, "gid"}} {
		used := side.lines
		if len(used) > dockerMaxRanges {
			used = used[:dockerMaxRanges]
			warns = append(warns, fmt.Sprintf("%s has %d ranges for %s; dockerd uses only the first %d (up to %s) and ignores the rest",
				side.path, len(side.lines), who, dockerMaxRanges, where(side.f, used[len(used)-1].No)))
		}
		var total uint64
		for _, l := range used {
			total += l.Range.Count
		}
		if total < dockerMinIDs {
			fails = append(fails, fmt.Sprintf("%s gives %s only %s (%s): container %ss from %d up cannot be mapped, and images with files owned by nobody (65534) fail with `Container ID 65534 cannot be mapped to a host ID`",
				side.path, who, checks.Count(int(total), side.ids), citeAll(side.f, used), side.ids, total))
		}
		if len(used) > 1 {
			warns = append(warns, fmt.Sprintf("%s has %d ranges for %s (%s): dockerd joins them in file order, so container %s 0 is host %s %d and adding, removing or reordering a line shifts every container %s and the data root",
				side.path, len(used), who, citeAll(side.f, used), side.ids, side.ids, used[0].Range.Start, side.ids))
		}
		if byName, byUID := ownersUsed(used, a); byName && byUID {
			warns = append(warns, fmt.Sprintf("%s lists %s both by name and by uid %d: dockerd uses both lines", side.path, a.User, a.UID))
		}
	}
	if len(fails)+len(warns) > 0 {
		remedy = append(remedy, fmt.Sprintf("give %s exactly one range of at least %d ids in each file: delete its lines and run %s", who, dockerMinIDs, applyDocker))
	}
	rootU, rootG := uidLines[0].Range.Start, gidLines[0].Range.Start
	r = r.With("container_root", fmt.Sprintf("%d:%d", rootU, rootG))
	switch {
	case len(fails) > 0:
		r.Status, r.Message, r.Remedy = checks.Fail, strings.Join(append(fails, warns...), "; "), strings.Join(remedy, "; ")
	case len(warns) > 0:
		r.Status, r.Message, r.Remedy = checks.Warn, strings.Join(warns, "; "), strings.Join(remedy, "; ")
	default:
		r.Status = checks.Pass
		r.Message = fmt.Sprintf("remap user %s (userns-remap %q, %s) has %s and %s: container root is host uid %d, gid %d (data root <data-root>/%d.%d)",
			who, spec.Raw, source, cite(s.UID.File, uidLines[0]), cite(s.GID.File, gidLines[0]), rootU, rootG, rootU, rootG)
	}
	return r
}

// remapUser is the remap user as judgeRemap resolved it: the spec and
// where it came from, the account (who names it in messages), the ID
// files and the user's lines in each.
type remapUser struct {
	spec     remap.Spec
	source   string
	a        remap.Account
	who      string
	s        *facts.SubIDs
	uid, gid []*subid.Line
}

// missingRanges words a remap user without ranges in one or both files.
func missingRanges(ctx context.Context, env *checks.Env, r checks.Result, u remapUser) checks.Result {
	spec, source, a, who, s, uidLines, gidLines := u.spec, u.source, u.a, u.who, u.s, u.uid, u.gid
	var lacks []string
	var notes []string
	for _, side := range []struct {
		f     facts.SubIDFile
		lines []*subid.Line
	}{{s.UID, uidLines}, {s.GID, gidLines}} {
		switch {
		case len(side.lines) > 0:
		case !side.f.Exists:
			lacks = append(lacks, fmt.Sprintf("%s does not exist", side.f.Path))
		default:
			lacks = append(lacks, fmt.Sprintf("%s has no range for %s (matched by %s)", side.f.Path, who, quoteAll(a.SubIDKeys())))
		}
	}
	if len(gidLines) == 0 && s.GID.File != nil {
		// Field case 6: ranges keyed by the group, which dockerd never uses.
		var gkeys []string
		if a.Group != "" && a.Group != a.User {
			gkeys = append(gkeys, a.Group)
		}
		if a.GID >= 0 && a.GID != a.UID {
			gkeys = append(gkeys, strconv.Itoa(a.GID))
		}
		if gl := linesFor(s.GID.File, gkeys); len(gl) > 0 {
			notes = append(notes, fmt.Sprintf("%s has a range for the group (%s), but dockerd looks /etc/subgid up by the USER %s, never by the group: add a line for %s",
				s.GID.Path, citeAll(s.GID.File, gl), who, quoteAll(a.SubIDKeys())))
		}
	}
	// dockerd reads /etc/subuid first, then /etc/subgid, and stops at the
	// first failure.
	symptom := fmt.Sprintf("`Can't create ID mappings: No subuid ranges found for user %q`", a.User)
	switch {
	case !s.UID.Exists:
		symptom = fmt.Sprintf("`open %s: no such file or directory`", s.UID.Path)
	case len(uidLines) > 0 && !s.GID.Exists:
		symptom = fmt.Sprintf("`open %s: no such file or directory`", s.GID.Path)
	case len(uidLines) > 0:
		symptom += fmt.Sprintf(" (dockerd 28 and later say subuid although it is %s that lacks the range)", s.GID.Path)
	}
	msg := fmt.Sprintf("remap user %s (userns-remap %q, %s): %s", who, spec.Raw, source, strings.Join(lacks, "; "))
	tail := ""
	if len(notes) > 0 {
		tail = "; " + strings.Join(notes, "; ")
	}
	if spec.Default {
		// dockerd allocates ranges (usermod -v/-w) only right after it
		// creates dockremap itself; an account that exists already, made by
		// `useradd -r` or `adduser --system`, never gets any.
		switch {
		case a.Exists:
			return mergeEv(checks.Failf(applyDocker,
				"%s; the dockremap account exists already, so dockerd does not allocate ranges for it and fails with %s%s", msg, symptom, tail), r)
		case !s.UID.Exists || !s.GID.Exists:
			return mergeEv(checks.Failf(applyDocker,
				"%s; dockerd would create dockremap but cannot record its ranges and fails with %s%s", msg, symptom, tail), r)
		}
		how := "an overlap test that can miss other users' ranges"
		if p := facts.VersionOf(ctx, env, versions.Dockerd); p.Known() && p.Version.AtLeast("28.0") {
			how = "dockerd 28 and later looking only at root's own lines, so they can overlap other users' ranges (e.g. alice:100000:65536)"
		} else if p.Known() {
			how = fmt.Sprintf("dockerd %s skipping past the existing lines from 100000 with an overlap test that misses a small range lying inside the new block", p.Version)
		}
		return mergeEv(checks.Warnf(applyDocker,
			"%s; dockerd would create dockremap at start and allocate its ranges itself, with %s: allocate them explicitly%s", msg, how, tail), r)
	}
	return mergeEv(checks.Failf(fmt.Sprintf("`usernsctl apply --target docker --user %s` (allocates one free range in both files)", spec.Raw),
		"%s; dockerd fails to start with %s%s", msg, symptom, tail), r)
}

func mergeEv(r, from checks.Result) checks.Result {
	for k, v := range from.Evidence {
		r = r.With(k, v)
	}
	return r
}

func ownersUsed(ls []*subid.Line, a remap.Account) (byName, byUID bool) {
	uid := strconv.Itoa(a.UID)
	for _, l := range ls {
		byName = byName || (a.User != "" && l.Range.Owner == a.User)
		byUID = byUID || (a.UID >= 0 && l.Range.Owner == uid)
	}
	return byName, byUID
}

func citeAll(f *subid.File, ls []*subid.Line) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = cite(f, l)
	}
	return strings.Join(parts, ", ")
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, " or ")
}

func rangeStrings(ls []*subid.Line) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Range.String()
	}
	return out
}
