package subid

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/subid"
)

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
