package subid

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/host"
)

// shown bounds how many lines a message lists.
const shown = 5

func checkFiles(_ context.Context, env *checks.Env) checks.Result {
	s := facts.SubIDsOf(env)
	both := []facts.SubIDFile{s.UID, s.GID}

	var missing []string
	for _, f := range both {
		if !f.Exists {
			missing = append(missing, f.Path)
		}
	}
	var findings, remedies []string
	severe := false // something any target's tools trip over
	for _, f := range both {
		switch {
		case !f.Exists:
		case f.File == nil:
			severe = true
			findings = append(findings, fmt.Sprintf("cannot read %s: %v", f.Path, f.Err))
			remedies = append(remedies, unreadableRemedy(f))
		default:
			fs, rs, sev := judgeProblems(f.File)
			findings, remedies = append(findings, fs...), append(remedies, rs...)
			severe = severe || sev
		}
	}

	ev := func(r checks.Result) checks.Result {
		r = r.With("subuid_exists", s.UID.Exists).With("subgid_exists", s.GID.Exists)
		for _, f := range both {
			if f.File != nil {
				key := strings.TrimPrefix(f.Path, "/etc/")
				r = r.With(key+"_lines", len(f.File.Lines)).With(key+"_problems", len(f.File.Problems()))
			}
		}
		return r
	}

	// A missing file matters to what reads it: dockerd and the rootless
	// tools do; containerd never does; the kubelet goes through getsubids
	// (judged by subid.kubelet).
	if len(missing) > 0 {
		switch env.Target {
		case checks.Docker:
			findings = append([]string{fmt.Sprintf("%s missing: dockerd with userns-remap fails to start with `open %s: no such file or directory` (or `Can't create ID mappings: No subuid ranges found for user \"dockremap\"`)",
				strings.Join(missing, " and "), missing[0])}, findings...)
			remedies = append([]string{"`usernsctl apply --target docker` (creates both files with a range for the remap user)"}, remedies...)
			severe = true
		case checks.Rootless:
			findings = append([]string{fmt.Sprintf("%s missing: newuidmap/newgidmap have no ranges to map, so rootless containers cannot start", strings.Join(missing, " and "))}, findings...)
			rng := "FIRST-LAST"
			if r, ok := newSuggester(env).next(facts.LoginDefsOf(env).Defs.SubUIDCount.Value); ok {
				rng = fmt.Sprintf("%d-%d", r.Start, r.End()-1)
			}
			who := env.User
			if who == "" {
				who = "USER"
			}
			files := "file"
			if len(missing) > 1 {
				files = "files"
			}
			remedies = append([]string{fmt.Sprintf("create the missing %s and give the user a range: `touch %s && usermod --add-subuids %s --add-subgids %s %s`", files, strings.Join(missing, " "), rng, rng, who)}, remedies...)
			severe = true
		}
	}
	if len(findings) == 0 {
		if len(missing) > 0 {
			why := "containerd does not read them"
			if env.Target == checks.Kubernetes {
				why = "the kubelet reads ranges through getsubids (see subid.kubelet)"
			}
			return ev(checks.Skipf("%s missing; %s", strings.Join(missing, " and "), why))
		}
		return ev(checks.Passf("%s (%s) and %s (%s) are well-formed and end with a newline",
			s.UID.Path, checks.Count(len(s.UID.File.Lines), "line"), s.GID.Path, checks.Count(len(s.GID.File.Lines), "line")))
	}
	r := checks.Warnf(strings.Join(remedies, "; "), "%s", strings.Join(findings, "; "))
	if severe && env.Target != checks.Containerd {
		r.Status = checks.Fail
	}
	return ev(r)
}

func unreadableRemedy(f facts.SubIDFile) string {
	if strings.Contains(f.Err.Error(), "is a directory") {
		return fmt.Sprintf("move the directory away and create the file: `mv %s %s.dir && touch %s && chmod 644 %s`", f.Path, f.Path, f.Path, f.Path)
	}
	if errors.Is(f.Err, host.ErrTooLarge) || errors.Is(f.Err, subid.ErrTooLarge) {
		return fmt.Sprintf("this is not a subordinate id file: restore shadow's backup after checking it (`cp -p %s- %s`)", f.Path, f.Path)
	}
	return fmt.Sprintf("make %s a readable regular file (`ls -l %s`)", f.Path, f.Path)
}

// judgeProblems words one file's problems: findings, remedies, and whether
// any is severe (everything but comments and blank lines, which shadow
// keeps as unparsed entries and every known reader skips).
func judgeProblems(f *subid.File) (findings, remedies []string, severe bool) {
	ps := f.Problems()
	if len(ps) == 0 {
		return nil, nil, false
	}
	binary := 0
	var text []string
	var del, fix []int
	crlf, nonl := false, false
	for _, p := range ps {
		text = append(text, p.Error())
		switch p.Kind {
		case subid.Comment, subid.Blank:
			del = append(del, p.Line)
		case subid.CRLF:
			crlf, severe = true, true
		case subid.NoNewline:
			nonl, severe = true, true
		case subid.Binary:
			binary++
			severe = true
			fix = append(fix, p.Line)
		default:
			severe = true
			fix = append(fix, p.Line)
		}
	}
	if binary > 0 && binary*2 >= len(f.Lines) {
		findings = append(findings, fmt.Sprintf("%s holds binary data (%d of %s), not owner:start:count lines: %s",
			f.Name, binary, checks.Count(len(f.Lines), "line"), list(text, 2)))
		remedies = append(remedies, fmt.Sprintf("restore shadow's backup after checking it: `cp -p %s- %s`", f.Name, f.Name))
		return findings, remedies, true
	}
	findings = append(findings, fmt.Sprintf("%s in %s: %s", checks.Count(len(ps), "problem"), f.Name, list(text, shown)))
	if len(fix) > 0 {
		lines, them := "lines", "them"
		if len(fix) == 1 {
			lines, them = "line", "it"
		}
		remedies = append(remedies, fmt.Sprintf("correct %s %s of %s to owner:start:count in plain decimal, or delete %s (`sed -i '%s' %s`%s)",
			lines, joinInts(fix, ", "), f.Name, them, sedDelete(fix), f.Name, sedMore(fix)))
	}
	if len(del) > 0 {
		what := "the comment and blank lines"
		if len(del) == 1 {
			what = "the comment or blank line"
		}
		remedies = append(remedies, fmt.Sprintf("delete %s: `sed -i '%s' %s`%s", what, sedDelete(del), f.Name, sedMore(del)))
	}
	if crlf {
		remedies = append(remedies, fmt.Sprintf("strip the DOS line endings: `sed -i 's/\\r$//' %s`", f.Name))
	}
	if nonl {
		remedies = append(remedies, fmt.Sprintf("`printf '\\n' >> %s`", f.Name))
	}
	return findings, remedies, severe
}

// maxRuns bounds how many line runs a message or remedy spells out: a
// file of 100,000 bad lines must not make a megabyte-long remedy.
const maxRuns = 20

// runs collapses sorted line numbers into runs: [3 4 5 9] → [3,5] [9,9].
func runs(lines []int) [][2]int {
	sorted := slices.Clone(lines)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var out [][2]int
	for _, n := range sorted {
		if k := len(out) - 1; k >= 0 && out[k][1]+1 == n {
			out[k][1] = n
			continue
		}
		out = append(out, [2]int{n, n})
	}
	return out
}

// sedDelete is a sed script deleting the lines, runs as "a,bd". Past
// maxRuns runs it deletes the first maxRuns only (see sedMore).
func sedDelete(lines []int) string {
	rs := runs(lines)
	var parts []string
	for i, r := range rs {
		if i == maxRuns {
			break
		}
		if r[0] == r[1] {
			parts = append(parts, strconv.Itoa(r[0])+"d")
		} else {
			parts = append(parts, fmt.Sprintf("%d,%dd", r[0], r[1]))
		}
	}
	return strings.Join(parts, ";")
}

// sedMore is what a capped sedDelete leaves out, for the remedy text.
func sedMore(lines []int) string {
	if n := len(runs(lines)); n > maxRuns {
		return fmt.Sprintf(" (the first %d of %d runs of lines; run it again after the next check for the rest)", maxRuns, n)
	}
	return ""
}

// joinInts lists line numbers for a message, runs as "a-b", at most
// maxRuns of them.
func joinInts(ns []int, sep string) string {
	rs := runs(ns)
	var parts []string
	for i, r := range rs {
		if i == maxRuns {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-maxRuns))
			break
		}
		if r[0] == r[1] {
			parts = append(parts, strconv.Itoa(r[0]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
	}
	return strings.Join(parts, sep)
}

// overlap is two lines of one file that share ids.
type overlap struct {
	file *subid.File
	a, b *subid.Line // a starts first (or at the same id, earlier in the file)
}

// overlaps finds, in O(n log n), every line that overlaps an earlier-
// starting one, paired with the line reaching furthest before it: each
// overlapping line is reported once, with a partner that really overlaps.
func overlaps(f *subid.File) []overlap {
	ls := slices.Clone(f.Ranges()) // sorted below: Ranges is shared, in file order
	slices.SortStableFunc(ls, func(x, y *subid.Line) int {
		switch {
		case x.Range.Start < y.Range.Start:
			return -1
		case x.Range.Start > y.Range.Start:
			return 1
		}
		return 0
	})
	var out []overlap
	var reach *subid.Line
	for _, l := range ls {
		if reach != nil && l.Range.Start < reach.Range.End() {
			out = append(out, overlap{f, reach, l})
		}
		if reach == nil || l.Range.End() > reach.Range.End() {
			reach = l
		}
	}
	return out
}

func checkOverlap(_ context.Context, env *checks.Env) checks.Result {
	s := facts.SubIDsOf(env)
	files := s.Files()
	if len(files) == 0 {
		return checks.Skipf("neither %s nor %s could be read (see subid.files)", s.UID.Path, s.GID.Path)
	}
	acc := facts.AccountsOf(env)
	if acc.Err != nil {
		acc = nil // owners compare by text only
	}
	var findings []string
	var dels []string
	n := 0
	var prev *subid.File
	var prevOvs []overlap
	for _, f := range files {
		var ovs []overlap
		if f.SharesLines(prev) {
			// The same lines under another name (subgid a copy of subuid):
			// the same pairs, named for this file.
			for _, o := range prevOvs {
				ovs = append(ovs, overlap{f, o.a, o.b})
			}
		} else {
			ovs = overlaps(f)
		}
		prev, prevOvs = f, ovs
		n += len(ovs)
		var lines []int
		for _, o := range ovs {
			findings = append(findings, describeOverlap(o, acc))
			lines = append(lines, o.b.No)
		}
		if len(lines) > 0 {
			slices.Sort(lines)
			lines = slices.Compact(lines)
			dels = append(dels, fmt.Sprintf("`sed -i '%s' %s`%s", sedDelete(lines), f.Name, sedMore(lines)))
		}
	}
	if n == 0 {
		total := 0
		for _, f := range files {
			total += len(f.Ranges())
		}
		return checks.Passf("no two of the %s in %s share an id", checks.Count(total, "range"), names(files)).With("overlaps", 0)
	}
	remedy := fmt.Sprintf("delete the later line of each pair (%s), then give its owner a free range again: `usernsctl apply` for the remap user, or `usermod --add-subuids FIRST-LAST --add-subgids FIRST-LAST USER` with ids no other line uses",
		strings.Join(dels, " and "))
	return checks.Failf(remedy, "%s: %s", checks.Count(n, "overlapping range"), list(findings, shown)).With("overlaps", n)
}

func names(files []*subid.File) string {
	ns := make([]string, len(files))
	for i, f := range files {
		ns[i] = f.Name
	}
	return strings.Join(ns, " and ")
}

func describeOverlap(o overlap, acc *facts.Accounts) string {
	a, b := o.a.Range, o.b.Range
	lo, hi := max(a.Start, b.Start), min(a.End(), b.End())-1
	ids := fmt.Sprintf("ids %d-%d", lo, hi)
	head := fmt.Sprintf("%s and %s share %s", cite(o.file, o.a), cite(o.file, o.b), ids)
	switch {
	case a.Owner == b.Owner && a == b:
		return head + fmt.Sprintf(": the same line twice (as `usermod -v` appends without checking); %s would be mapped twice and the kernel refuses the map (`write to uid_map failed: Invalid argument`)", a.Owner)
	case a.Owner == b.Owner:
		return head + fmt.Sprintf(": both are %s's, so a map built from them holds those ids twice and the kernel refuses it", a.Owner)
	case sameAccount(acc, a.Owner, b.Owner):
		return head + fmt.Sprintf(": %s and %s are the same account (one by name, one by uid), so Docker and newuidmap use both lines and map those ids twice", a.Owner, b.Owner)
	}
	return head + fmt.Sprintf(": containers of %s and %s get the same host ids and can act on each other's files", a.Owner, b.Owner)
}

// sameAccount reports whether two owner fields name one account: a name
// and that account's uid.
func sameAccount(acc *facts.Accounts, x, y string) bool {
	if acc == nil {
		return false
	}
	uidOf := func(owner string) (int, bool) {
		if n, err := strconv.Atoi(owner); err == nil {
			return n, true
		}
		u, ok := acc.UserByName(owner)
		return u.Uid, ok
	}
	ux, okx := uidOf(x)
	uy, oky := uidOf(y)
	return okx && oky && ux == uy
}

func checkAccountIDs(_ context.Context, env *checks.Env) checks.Result {
	s := facts.SubIDsOf(env)
	if len(s.Files()) == 0 {
		return checks.Skipf("neither %s nor %s could be read (see subid.files)", s.UID.Path, s.GID.Path)
	}
	acc := facts.AccountsOf(env)
	if acc.Err != nil {
		return checks.Warnf("make /etc/passwd and /etc/group readable regular files", "cannot tell which ids belong to accounts: %v", acc.Err)
	}
	type id struct {
		n    uint64
		name string
	}
	users := make([]id, 0, len(acc.Users))
	for _, u := range acc.Users {
		if u.Uid >= 0 {
			users = append(users, id{uint64(u.Uid), u.Name})
		}
	}
	groups := make([]id, 0, len(acc.Groups))
	for _, g := range acc.Groups {
		if g.Gid >= 0 {
			groups = append(groups, id{uint64(g.Gid), g.Name})
		}
	}
	byID := func(a, b id) int {
		switch {
		case a.n < b.n:
			return -1
		case a.n > b.n:
			return 1
		}
		return 0
	}
	slices.SortFunc(users, byID)
	slices.SortFunc(groups, byID)

	sug := newSuggester(env)
	var findings, fixes []string
	bad := 0
	for _, side := range []struct {
		f            facts.SubIDFile
		ids          []id
		kind, source string
	}{
		{s.UID, users, "uid", facts.PasswdFile},
		{s.GID, groups, "gid", facts.GroupFile},
	} {
		if side.f.File == nil {
			continue
		}
		for _, l := range side.f.File.Ranges() {
			r := l.Range
			i, _ := slices.BinarySearchFunc(side.ids, r.Start, func(x id, t uint64) int {
				switch {
				case x.n < t:
					return -1
				case x.n > t:
					return 1
				}
				return 0
			})
			var hits []string
			own := false
			for ; i < len(side.ids) && side.ids[i].n < r.End(); i++ {
				hits = append(hits, fmt.Sprintf("%s %d (%s)", side.kind, side.ids[i].n, side.ids[i].name))
				own = own || side.ids[i].name == r.Owner || strconv.FormatUint(side.ids[i].n, 10) == r.Owner
			}
			if len(hits) == 0 {
				continue
			}
			bad++
			msg := fmt.Sprintf("%s contains %s from %s", cite(side.f.File, l), listSep(hits, 3, ", "), side.source)
			if own {
				msg += " — its owner's own id"
			}
			findings = append(findings, msg)
			fix := fmt.Sprintf("move line %d of %s to ids no account has", l.No, side.f.Path)
			if nr, ok := sug.next(r.Count); ok {
				text := fmt.Sprintf("%s:%d:%d", r.Owner, nr.Start, nr.Count)
				if cmd := replaceLine(side.f.Path, l.No, text); cmd != "" {
					fix = fmt.Sprintf("`%s` (a free range of the same size)", cmd)
				}
			}
			fixes = append(fixes, fix)
		}
	}
	if bad == 0 {
		return checks.Passf("no range in %s contains an account's id from %s or %s (%s, %s)",
			names(s.Files()), facts.PasswdFile, facts.GroupFile, checks.Count(len(acc.Users), "user"), checks.Count(len(acc.Groups), "group")).With("ranges_with_account_ids", 0)
	}
	contain := "contain"
	if bad == 1 {
		contain = "contains"
	}
	return checks.Failf(list(fixes, shown),
		"%s %s real accounts' ids, so a container's ids would be those accounts' on the host, and newuidmap fails with `write to uid_map failed: Invalid argument` where the owner's own id is inside: %s",
		checks.Count(bad, "range"), contain, list(findings, shown)).With("ranges_with_account_ids", bad)
}
