package subid

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
)

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
