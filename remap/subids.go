package remap

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/ids"
)

// Goal is what one owner needs in /etc/subuid and /etc/subgid.
type Goal struct {
	// Keys are the owner fields that name the account (its name and uid):
	// a line under either belongs to it.
	Keys []string
	// Owner is written on new lines (the account name).
	Owner string
	// Request sizes and places a new range (Count, Min, Max, Align).
	Request Request
	// MinCount is the smallest existing total that is still usable
	// (dockerd needs 65536 to map a whole container).
	MinCount uint64
	// Kubelet applies the kubelet's rules to existing lines: exactly one,
	// identical in both files, aligned (see CheckKubelet).
	Kubelet   bool
	MaxPods   int
	IDsPerPod uint64
	// AccountIDs are every account's uids and gids (including accounts
	// this apply creates): no range may contain one.
	UIDs, GIDs []int
}

// Outcome is what EnsureRanges decided.
type Outcome struct {
	// Range is the owner's (first) range after the change.
	Range ids.Range
	// Added is true when lines were appended; Kept explains an existing
	// range that was kept.
	Added bool
	Note  string
}

// ErrBadInput marks errors caused by malformed files (exit code 2).
var ErrBadInput = errors.New("bad input")

// Refuse returns the lines apply cannot safely edit around: anything but
// comments and blank lines (which shadow tolerates and are kept byte for
// byte) and a missing final newline (which apply adds).
func Refuse(f *subid.File) error {
	var errs []error
	for _, p := range f.Problems() {
		switch p.Kind {
		case subid.Comment, subid.Blank, subid.NoNewline:
			continue
		}
		errs = append(errs, p)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w\nfix: correct or delete those lines (`usernsctl check` names each), then run apply again; nothing was written", ErrBadInput, errors.Join(errs...))
}

// EnsureRanges makes sure g's owner has a usable range in both files,
// appending to uid and gid (in memory) as needed: an existing valid range
// is kept; a missing side mirrors the other when that range is free there;
// an owner with no range gets the lowest free range (shadow's
// find_free_range) in BOTH files, so the same range serves uids and gids.
func EnsureRanges(uid, gid *subid.File, g Goal) (Outcome, error) {
	for _, f := range []*subid.File{uid, gid} {
		if err := Refuse(f); err != nil {
			return Outcome{}, err
		}
	}
	mine := func(f *subid.File) []*subid.Line {
		var out []*subid.Line
		for _, l := range f.Ranges() {
			if slices.Contains(g.Keys, l.Range.Owner) {
				out = append(out, l)
			}
		}
		return out
	}
	u, gg := mine(uid), mine(gid)
	if g.Kubelet {
		return ensureKubelet(uid, gid, u, gg, g)
	}
	switch {
	case len(u) > 0 && len(gg) > 0:
		for _, side := range []struct {
			f     *subid.File
			lines []*subid.Line
			ids   []int
		}{{uid, u, g.UIDs}, {gid, gg, g.GIDs}} {
			if err := usable(side.f, side.lines, g.MinCount, side.ids); err != nil {
				return Outcome{}, err
			}
		}
		r := u[0].Range
		return Outcome{Range: r.Range, Note: fmt.Sprintf("kept %s (%s:%d) and %s (%s:%d)",
			r, uid.Name, u[0].No, gg[0].Range, gid.Name, gg[0].No)}, nil
	case len(u) > 0 || len(gg) > 0:
		have, haveF, missF, missIDs := u, uid, gid, g.GIDs
		if len(u) == 0 {
			have, haveF, missF, missIDs = gg, gid, uid, g.UIDs
		}
		haveIDs := g.UIDs
		if haveF == gid {
			haveIDs = g.GIDs
		}
		if err := usable(haveF, have, g.MinCount, haveIDs); err != nil {
			return Outcome{}, err
		}
		r := have[0].Range
		want := r.Range
		if clash := overlapping(missF, want, missIDs); clash != "" {
			// The mirror image is taken: allocate a free range for the
			// missing side alone (dockerd does not need them equal).
			start, err := AllocateInPlace(Occupied([]*subid.File{missF}, missIDs), g.Request)
			if err != nil {
				return Outcome{}, err
			}
			want = ids.Range{Start: start, Count: g.Request.Count}
		}
		if _, err := missF.Append(subid.NewRange(g.Owner, want.Start, want.Count)); err != nil {
			return Outcome{}, err
		}
		return Outcome{Range: r.Range, Added: true,
			Note: fmt.Sprintf("%s had %s (line %d); added %s:%d:%d to %s", haveF.Name, r, have[0].No, g.Owner, want.Start, want.Count, missF.Name)}, nil
	}
	return allocateBoth(uid, gid, g, "")
}

// allocateBoth gives the owner the lowest free range (shadow's
// find_free_range over every owner's ranges in both files and every
// account id) and appends it to both files, so one range serves uids and
// gids.
func allocateBoth(uid, gid *subid.File, g Goal, why string) (Outcome, error) {
	start, err := AllocateInPlace(Occupied([]*subid.File{uid, gid}, g.UIDs, g.GIDs), g.Request)
	if err != nil {
		return Outcome{}, err
	}
	nr := subid.NewRange(g.Owner, start, g.Request.Count)
	for _, f := range []*subid.File{uid, gid} {
		if _, err := f.Append(nr); err != nil {
			return Outcome{}, err
		}
	}
	return Outcome{Range: ids.Range{Start: start, Count: nr.Count}, Added: true,
		Note: fmt.Sprintf("allocated %s in %s and %s%s", nr, uid.Name, gid.Name, why)}, nil
}

// usable refuses an owner's existing ranges that dockerd or newuidmap
// would reject: too small in total, overlapping another owner, or holding
// an account's id.
func usable(f *subid.File, lines []*subid.Line, minCount uint64, accountIDs []int) error {
	var total uint64
	for _, l := range lines {
		total += l.Range.Count
		if clash := overlappingExcept(f, l.Range.Range, accountIDs, l.Range.Owner, lines); clash != "" {
			return &errs.Refusal{
				Reason: fmt.Sprintf("%s: the existing range %s %s", errs.At(f.Name, l.No), l.Range, clash),
				Fix:    fmt.Sprintf("delete line %d of %s (`sed -i '%dd' %s`) and run apply again to allocate a free range", l.No, f.Name, l.No, f.Name),
			}
		}
	}
	if total < minCount {
		return &errs.Refusal{
			Reason: fmt.Sprintf("%s: %s has only %d ids in %s; a container needs %d", errs.At(f.Name, lines[0].No), lines[0].Range.Owner, total, f.Name, minCount),
			Fix:    fmt.Sprintf("delete its line(s) from %s and run apply again to allocate %d ids", f.Name, minCount),
		}
	}
	return nil
}

// overlapping describes what r collides with in f (any owner) or among
// ids; "" when it is free.
func overlapping(f *subid.File, r ids.Range, ids []int) string {
	return overlappingExcept(f, r, ids, "", nil)
}

func overlappingExcept(f *subid.File, r ids.Range, accountIDs []int, _ string, self []*subid.Line) string {
	var hits []string
	for _, l := range f.Ranges() {
		if slices.Contains(self, l) {
			continue
		}
		if r.Overlaps(l.Range.Range) {
			hits = append(hits, fmt.Sprintf("%s (line %d)", l.Range, l.No))
		}
	}
	if len(hits) > 0 {
		return "overlaps " + strings.Join(hits, ", ")
	}
	for _, id := range accountIDs {
		if id >= 0 && r.Contains(uint64(id)) {
			return fmt.Sprintf("contains the id %d of an existing account", id)
		}
	}
	return ""
}

func ensureKubelet(uid, gid *subid.File, u, gg []*subid.Line, g Goal) (Outcome, error) {
	if len(u) == 0 && len(gg) == 0 {
		return allocateBoth(uid, gid, g, fmt.Sprintf(" (%d pods × %d ids)", g.MaxPods, g.IDsPerPod))
	}
	side := func(f *subid.File, ls []*subid.Line) KubeletRange {
		var kr KubeletRange
		for _, l := range ls {
			kr.Ranges = append(kr.Ranges, l.Range.Range)
			kr.Where = append(kr.Where, errs.At(f.Name, l.No).String())
		}
		return kr
	}
	ku, kg := side(uid, u), side(gid, gg)
	// One side missing but the other valid and free on the missing side:
	// mirror it, the kubelet wants them identical.
	if len(u) == 1 && len(gg) == 0 || len(u) == 0 && len(gg) == 1 {
		have, haveF, missF, missIDs := u[:], uid, gid, g.GIDs
		if len(u) == 0 {
			have, haveF, missF, missIDs = gg, gid, uid, g.UIDs
		}
		r := ids.Range{Start: have[0].Range.Start, Count: have[0].Range.Count}
		one := KubeletRange{Ranges: []ids.Range{r}, Where: []string{errs.At(haveF.Name, have[0].No).String()}}
		if len(CheckKubelet(one, one, g.MaxPods, g.IDsPerPod)) == 0 && overlapping(missF, r, missIDs) == "" {
			if _, err := missF.Append(subid.NewRange(g.Owner, r.Start, r.Count)); err != nil {
				return Outcome{}, err
			}
			return Outcome{Range: r, Added: true, Note: fmt.Sprintf("%s had %s:%d:%d; added the same line to %s", haveF.Name, g.Owner, r.Start, r.Count, missF.Name)}, nil
		}
	}
	if v := CheckKubelet(ku, kg, g.MaxPods, g.IDsPerPod); len(v) > 0 {
		var reasons []string
		for _, x := range v {
			reasons = append(reasons, x.String())
		}
		where := strings.Join(append(append([]string{}, ku.Where...), kg.Where...), ", ")
		return Outcome{}, &errs.Refusal{
			Reason: fmt.Sprintf("the existing kubelet range (%s) is not one the kubelet accepts: %s", where, strings.Join(reasons, "; ")),
			Fix: fmt.Sprintf("delete the %q lines from /etc/subuid and /etc/subgid (`sed -i '/^%s:/d' /etc/subuid /etc/subgid`) while no user-namespaced pod runs on the node, then run apply again",
				g.Owner, g.Owner),
		}
	}
	r := ku.Ranges[0]
	for _, side := range []struct {
		f   *subid.File
		ls  []*subid.Line
		ids []int
	}{{uid, u, g.UIDs}, {gid, gg, g.GIDs}} {
		if clash := overlappingExcept(side.f, r, side.ids, g.Owner, side.ls); clash != "" {
			return Outcome{}, &errs.Refusal{
				Reason: fmt.Sprintf("%s: the kubelet range %s:%d:%d %s", errs.At(side.f.Name, side.ls[0].No), g.Owner, r.Start, r.Count, clash),
				Fix:    fmt.Sprintf("move the other range, or delete the %q lines while no user-namespaced pod runs and run apply again", g.Owner),
			}
		}
	}
	return Outcome{Range: r, Note: fmt.Sprintf("kept %s:%d:%d (%s, %s)", g.Owner, r.Start, r.Count, ku.Where[0], kg.Where[0])}, nil
}
