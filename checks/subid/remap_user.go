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

// dockerMinIDs: images carry files owned by ids up to 65534 (nobody).
// dockerd itself joins every range it finds, with no limit of its own.
const dockerMinIDs = rules.DockerMinIDCount

const applyDocker = "`usernsctl apply --target docker`"

func checkRemapUser(ctx context.Context, env *checks.Env) checks.Result {
	da := facts.DockerAccountOf(ctx, env)
	spec, source := da.Remap.Spec, da.Remap.Source
	if da.Remap.Err != nil {
		return checks.Warnf("fix userns-remap in daemon.json (forms: default, USER, USER:GROUP, UID, UID:GID) or name the user with --user",
			"cannot tell the remap user: %v", da.Remap.Err)
	}
	if acc := facts.AccountsOf(env); acc.Err != nil {
		return checks.Warnf("make /etc/passwd and /etc/group readable regular files",
			"cannot resolve the remap user %q (%s): %v", spec.Raw, source, acc.Err)
	}
	return judgeRemap(ctx, env, da)
}

// judgeRemap checks the remap user's ranges the way the installed dockerd
// reads them: /etc/subuid and /etc/subgid directly (no NSS), matching the
// owner field against the user's name and its uid (facts.DockerSubIDLines:
// in file order from rules.DockerUsergroup on, the uid's lines first
// before).
func judgeRemap(ctx context.Context, env *checks.Env, da *facts.DockerAccount) checks.Result {
	spec, source, a := da.Remap.Spec, da.Remap.Source, da.Account
	if errors.Is(da.Err, remap.ErrRoot) && a.GroupExists {
		return checks.Skipf("userns-remap %q (%s) resolves to root: dockerd turns user namespaces off and reads no subordinate ranges (see docker.userns_remap)", spec.Raw, source)
	}
	who := a.User
	if who == "" {
		who = "uid " + strconv.Itoa(a.UID)
	}
	ev := func(r checks.Result) checks.Result {
		return r.With("spec", spec.Raw).With("source", source).With("user", a.User).With("uid", a.UID).With("user_exists", a.Exists)
	}

	if !a.Exists && !spec.Default {
		msg := fmt.Sprintf("the remap user %s (userns-remap %q, %s) is not in %s: dockerd cannot build the ID mappings and does not start", who, spec.Raw, source, facts.PasswdFile)
		remedy := fmt.Sprintf("create the account (`useradd --system --no-create-home --shell /usr/sbin/nologin %s`) or run `usernsctl apply --target docker --user %s`", a.User, spec.Raw)
		if u := da.Unknown(); len(u) > 0 {
			return ev(checks.Warnf(fmt.Sprintf("run `%s`: if it prints nothing, %s", u[0].Command(), remedy),
				"%s, unless `%s` knows it (%s names other sources; it could not be asked here: %v)", msg, u[0].Command(), u[0].Source.Where(), u[0].Err))
		}
		return ev(checks.Failf(remedy, "%s", msg))
	}

	s := facts.SubIDsOf(env)
	dv := facts.VersionOf(ctx, env, versions.Dockerd)
	fileOrder, orderKnown := facts.DockerdAtLeast(env, rules.DockerUsergroup)
	uidLines, gidLines := facts.DockerSubIDLines(env, s.UID.File, a), facts.DockerSubIDLines(env, s.GID.File, a)
	r := ev(checks.Result{}).With("subuid_ranges", rangeStrings(uidLines)).With("subgid_ranges", rangeStrings(gidLines))

	if len(uidLines) == 0 || len(gidLines) == 0 {
		return missingRanges(ctx, env, r, remapUser{spec, source, a, who, s, uidLines, gidLines, dv})
	}

	var fails, warns []string
	for _, side := range []struct {
		path  string
		f     *subid.File
		lines []*subid.Line
		ids   string
	}{{s.UID.Path, s.UID.File, uidLines, "uid"}, {s.GID.Path, s.GID.File, gidLines, "gid"}} {
		used := side.lines
		var total uint64
		for _, l := range used {
			total += l.Range.Count
		}
		if total < dockerMinIDs {
			fails = append(fails, fmt.Sprintf("%s gives %s only %s (%s): dockerd starts, but container %ss from %d up cannot be mapped, so pulling, loading or building an image with files owned by nobody (65534) fails with `%s`",
				side.path, who, checks.Count(int(total), side.ids), citeAll(side.f, used), side.ids, total, unmappable(fileOrder)))
		}
		if n, why := maxMapLines(env); len(used) > n {
			fails = append(fails, fmt.Sprintf("%s gives %s %d ranges (%s): dockerd writes one %s_map line per range, and %s takes at most %d, so runc's write fails with EINVAL and no container starts",
				side.path, who, len(used), citeAll(side.f, used), side.ids, why, n))
		}
		if len(used) > 1 {
			warns = append(warns, fmt.Sprintf("%s has %d ranges for %s (%s): dockerd joins them in that order, so container %s 0 is host %s %d and adding, removing or reordering a line shifts every container %s and the data root",
				side.path, len(used), who, citeAll(side.f, used), side.ids, side.ids, used[0].Range.Start, side.ids))
		}
		all := linesFor(side.f, a.SubIDKeys())
		byName, byUID := ownersUsed(all, a)
		switch {
		case !byName || !byUID:
		case fileOrder:
			note := ""
			if !orderKnown {
				note = fmt.Sprintf(" (dockerd's version is unknown: %s and later assumed; earlier releases use only the uid's lines)", rules.DockerUsergroup)
			}
			warns = append(warns, fmt.Sprintf("%s lists %s both by name and by uid %d: dockerd uses both lines, in file order%s", side.path, a.User, a.UID, note))
		default:
			var ignored []*subid.Line
			for _, l := range all {
				if l.Range.Owner == a.User {
					ignored = append(ignored, l)
				}
			}
			warns = append(warns, fmt.Sprintf("%s lists %s both by name and by uid %d: %s maps only the lines of uid %d and ignores %s (dockerd %s and later would use both, in file order, and move the data root)",
				side.path, a.User, a.UID, dockerdName(dv), a.UID, citeAll(side.f, ignored), rules.DockerUsergroup))
		}
	}
	var remedy []string
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

// unmappable is dockerd's text for an id outside the map (moby
// pkg/idtools toHost before rules.DockerUsergroup, moby/sys/user after).
func unmappable(usergroup bool) string {
	if usergroup {
		return "container ID 65534 cannot be mapped to a host ID"
	}
	return "Container ID 65534 cannot be mapped to a host ID"
}

// dockerdName is "dockerd 27.3.1", or "dockerd" when the version is
// unknown.
func dockerdName(p facts.Program) string {
	if p.Known() {
		return "dockerd " + p.Version.String()
	}
	return "dockerd"
}

// remapUser is the remap user as judgeRemap resolved it: the spec and
// where it came from, the account (who names it in messages), the ID
// files, the user's lines in each, and the installed dockerd.
type remapUser struct {
	spec     remap.Spec
	source   string
	a        remap.Account
	who      string
	s        *facts.SubIDs
	uid, gid []*subid.Line
	dockerd  facts.Program
}

// mappingsError is dockerd's start error for a user without a range (R15,
// R16): lack is "no subuid ranges found for user …" or "open …".
func mappingsError(env *checks.Env, lack string) string {
	if late, _ := facts.DockerdAtLeast(env, rules.DockerIDMappingsText); late {
		return "error creating ID mappings: " + lack
	}
	return "Can't create ID mappings: " + lack
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
	// first failure. Before rules.DockerUsergroup a missing subgid range
	// says subgid; from it on both files say subuid.
	usergroup, _ := facts.DockerdAtLeast(env, rules.DockerUsergroup)
	lack := fmt.Sprintf("no subuid ranges found for user %q", a.User)
	switch {
	case !s.UID.Exists:
		lack = fmt.Sprintf("open %s: no such file or directory", s.UID.Path)
	case len(uidLines) > 0 && !s.GID.Exists:
		lack = fmt.Sprintf("open %s: no such file or directory", s.GID.Path)
	case len(uidLines) > 0 && !usergroup:
		lack = fmt.Sprintf("no subgid ranges found for user %q", a.User)
	}
	symptom := "`" + mappingsError(env, lack) + "`"
	if len(uidLines) > 0 && s.GID.Exists && usergroup {
		symptom += fmt.Sprintf(" (dockerd %s and later say subuid although it is %s that lacks the range)", rules.DockerUsergroup, s.GID.Path)
	}
	if !u.dockerd.Known() {
		symptom += " (dockerd's version is unknown: the text of the latest release is quoted)"
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
			missing := s.UID.Path
			db := "subuid"
			if s.UID.Exists {
				missing, db = s.GID.Path, "subgid"
			}
			return mergeEv(checks.Failf(applyDocker,
				"%s; dockerd would create dockremap but cannot record its ranges and fails with `%s`; the account then exists without ranges, so every later start fails too%s",
				msg, creationError(env, fmt.Sprintf("%s: error while looking for %s ranges for user %q: open %s: no such file or directory", couldnt(env), db, remap.DefaultUser, missing)), tail), r)
		}
		if res, bad := creationTools(env, u, msg); bad {
			return mergeEv(res, r)
		}
		how := "an overlap test that can miss other users' ranges"
		switch p := u.dockerd; {
		case usergroup && p.Known():
			how = fmt.Sprintf("dockerd %s and later looking only at root's own lines, so they can overlap other users' ranges (e.g. alice:100000:65536)", rules.DockerUsergroup)
		case p.Known():
			how = fmt.Sprintf("dockerd %s skipping past the existing lines from 100000 with an overlap test that misses a small range lying inside the new block", p.Version)
		}
		if !facts.DockerdPathKnown(env) {
			tail += "; whether adduser/useradd and usermod are there cannot be told (neither /usr/sbin nor /sbin is in this snapshot)"
		}
		return mergeEv(checks.Warnf(applyDocker,
			"%s; dockerd would create dockremap at start and allocate its ranges itself, with %s: allocate them explicitly%s", msg, how, tail), r)
	}
	return mergeEv(checks.Failf(fmt.Sprintf("`usernsctl apply --target docker --user %s` (allocates one free range in both files)", spec.Raw),
		"%s; dockerd fails to start with %s%s", msg, symptom, tail), r)
}

// couldnt is the text of a failed range allocation, by release.
func couldnt(env *checks.Env) string {
	if lower, _ := facts.DockerdAtLeast(env, rules.DockerErrorsLowercase); lower {
		return "couldn't create subordinate ID ranges"
	}
	return "Couldn't create subordinate ID ranges"
}

// creationError wraps a dockremap creation failure as dockerd reports it.
func creationError(env *checks.Env, err string) string {
	return fmt.Sprintf("Error during %q user creation: %s", remap.DefaultUser, err)
}

// creationTools judges the programs dockerd runs to create dockremap and
// its ranges (R10, moby AddNamespaceRangesUser): adduser (when it resolves
// to a file named adduser) else useradd; then usermod -v/-w for each file
// without a line owned by the name dockremap. bad is set with a failing
// result when one is missing; a snapshot without any PATH directory cannot
// tell and passes here.
func creationTools(env *checks.Env, u remapUser, msg string) (checks.Result, bool) {
	if !facts.DockerdPathKnown(env) {
		return checks.Result{}, false
	}
	lower, _ := facts.DockerdAtLeast(env, rules.DockerErrorsLowercase)
	adduser, useradd := facts.DockerdToolOf(env, "adduser"), facts.DockerdToolOf(env, "useradd")
	if !adduser.Is() && !useradd.Is() {
		add := "Error adding user"
		if lower {
			add = "error adding user"
		}
		seen := "neither is on dockerd's PATH"
		if adduser.Found() {
			seen = fmt.Sprintf("%s resolves to %s, which dockerd does not take for adduser, and useradd is not on dockerd's PATH", adduser.Path, adduser.Resolved)
		}
		return checks.Failf("install shadow's tools (`apk add shadow`, `apt-get install passwd`, `dnf install shadow-utils`), or create the account and its ranges now: "+applyDocker,
			"%s; dockerd would create dockremap with adduser or useradd, but %s: it fails to start with `%s`", msg, seen,
			creationError(env, fmt.Sprintf("%s %q: cannot add user; no useradd/adduser binary found", add, remap.DefaultUser))), true
	}
	s := u.s
	need := ""
	for _, side := range []struct {
		f  *subid.File
		db string
	}{{s.UID.File, "subuid"}, {s.GID.File, "subgid"}} {
		if len(linesFor(side.f, []string{remap.DefaultUser})) == 0 {
			need = side.db
			break
		}
	}
	usermod := facts.DockerdToolOf(env, "usermod")
	if need == "" || usermod.Found() {
		return checks.Result{}, false
	}
	unable := "Unable"
	if lower {
		unable = "unable"
	}
	return checks.Failf("install shadow's usermod (`apk add shadow`, `apt-get install passwd`), or create the account and its ranges now: "+applyDocker,
		"%s; dockerd would create dockremap, then add its %s range with `usermod`, which is not on dockerd's PATH (%s): it fails to start with `%s`, and dockremap then exists without ranges, so every later start fails too",
		msg, need, strings.Join(facts.DockerdPath, ":"),
		creationError(env, fmt.Sprintf("%s: %s to add %s range to user: %q; output: , err: exec: \"usermod\": executable file not found in $PATH", couldnt(env), unable, need, remap.DefaultUser))), true
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

// maxMapLines is how many lines the kernel takes in one uid_map or gid_map
// (a current kernel's when the release is unknown), and which kernel says so.
func maxMapLines(env *checks.Env) (int, string) {
	rel := checks.KernelRelease(env)
	if v, err := versions.Kernel(rel); err == nil && !v.AtLeast(rules.KernelMapExtents340.Value) {
		return rules.KernelMapMaxLinesOld, fmt.Sprintf("kernel %s (before %s)", rel, rules.KernelMapExtents340)
	}
	return rules.KernelMapMaxLines, "the kernel"
}
