package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/ids"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/verify/procfs"
)

// Range is one subordinate range with where it was read.
type Range struct {
	ids.Range
	// Where is "/etc/subuid:3", "`getsubids kubelet` line 1" or "the
	// kubelet's default".
	Where string `json:"where"`
}

// Expect is the ranges containers must use: for Docker, the remap user's
// lines in /etc/subuid and /etc/subgid; for containerd and Kubernetes, the
// kubelet's (or --user's) range.
type Expect struct {
	// Owner is the account whose ranges these are; Source says how it was
	// chosen ("daemon.json /etc/docker/daemon.json line 2", "--user",
	// "default").
	Owner, Source string
	UID, GID      []Range
	// Default is set when no range is configured and the kubelet's silent
	// default (65536 up to the last id) applies.
	Default bool
	// Note explains a default or a fallback, for messages.
	Note string
	// Err is why the ranges could not be read.
	Err error
}

// Ranges returns the uid or gid ranges.
func (e *Expect) Ranges(gid bool) []Range {
	if gid {
		return e.GID
	}
	return e.UID
}

// describe is "dockremap's range 100000:65536 (/etc/subuid:1)".
func (e *Expect) describe(gid bool) string {
	rs := e.Ranges(gid)
	if len(rs) == 0 {
		return fmt.Sprintf("%s has no range in %s", e.Owner, fileOf(gid))
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d-%d (%s)", r.Start, r.End()-1, r.Where)
	}
	who := e.Owner + "'s"
	if e.Default {
		who = "the kubelet's default"
	}
	noun := "range"
	if len(rs) > 1 {
		noun = "ranges"
	}
	return fmt.Sprintf("%s %s %s", who, noun, strings.Join(parts, ", "))
}

func fileOf(gid bool) string {
	if gid {
		return facts.SubGIDFile
	}
	return facts.SubUIDFile
}

func mapFile(gid bool) string {
	if gid {
		return "gid_map"
	}
	return "uid_map"
}

// DockerMap is the map dockerd writes for ranges: container ids from 0,
// one line per range, in the order given.
func DockerMap(rs []Range) []procfs.IDMap {
	var out []procfs.IDMap
	var inside uint64
	for _, r := range rs {
		out = append(out, procfs.IDMap{Inside: inside, Outside: r.Start, Count: r.Count})
		inside += r.Count
	}
	return out
}

// sortedRanges returns rs by start: dockerd up to 20.10 sorted an
// owner's ranges before mapping them; later versions keep file order.
func sortedRanges(rs []Range) []Range {
	out := append([]Range(nil), rs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

func rangesFromLines(f *subid.File, keys []string) []Range {
	if f == nil {
		return nil
	}
	var out []Range
	for _, l := range f.Ranges() {
		for _, k := range keys {
			if l.Range.Owner == k {
				out = append(out, Range{Range: l.Range.Range, Where: errs.At(f.Name, l.No).String()})
				break
			}
		}
	}
	return out
}

// DockerExpect is the remap user's ranges, resolved the way dockerd
// resolves them (--user, else daemon.json, else the unit's flag, else
// default = dockremap; accounts through NSS as dockerd looks them up), and
// the lines it maps in the installed release's order: the uid's lines
// before 28, name and uid lines in file order from 28 (facts.DockerSubIDLines,
// the lines subid.remap_user judges).
func DockerExpect(ctx context.Context, env *checks.Env) *Expect {
	e, _ := checks.Fact(env, "verify.expect.docker", func(env *checks.Env) (*Expect, error) {
		da := facts.DockerAccountOf(ctx, env)
		e := &Expect{Source: da.Remap.Source, Owner: da.Remap.Spec.User}
		if da.Err != nil {
			e.Err = da.Err
			return e, nil
		}
		a := da.Account
		switch {
		case a.User != "":
			e.Owner = a.User
		case e.Owner == "":
			e.Owner = fmt.Sprintf("uid %d", a.UID)
		}
		s := facts.SubIDsOf(env)
		for _, f := range []facts.SubIDFile{s.UID, s.GID} {
			if f.Err != nil && f.File == nil {
				e.Err = f.Err
			}
		}
		e.UID = rangesOf(s.UID.File, facts.DockerSubIDLines(env, s.UID.File, a))
		e.GID = rangesOf(s.GID.File, facts.DockerSubIDLines(env, s.GID.File, a))
		return e, nil
	})
	return e
}

// rangesOf gives lines of f with where they were read.
func rangesOf(f *subid.File, lines []*subid.Line) []Range {
	out := make([]Range, 0, len(lines))
	for _, l := range lines {
		out = append(out, Range{Range: l.Range.Range, Where: errs.At(f.Name, l.No).String()})
	}
	return out
}

func (e *Expect) fromFiles(env *checks.Env, keys []string) {
	s := facts.SubIDsOf(env)
	for _, f := range []facts.SubIDFile{s.UID, s.GID} {
		if f.Err != nil && f.File == nil {
			e.Err = f.Err
		}
	}
	e.UID = rangesFromLines(s.UID.File, keys)
	e.GID = rangesFromLines(s.GID.File, keys)
}

// KubeletExpect is the range pods must use: --user's lines in the files
// when one is named; else what the kubelet itself uses: the kubelet user's
// range from getsubids, or its silent default (65536 up to the last id)
// when there is no kubelet user or no getsubids (traps.md).
func KubeletExpect(ctx context.Context, env *checks.Env, user string) *Expect {
	e, _ := checks.Fact(env, "verify.expect.kubelet:"+user, func(env *checks.Env) (*Expect, error) {
		e := &Expect{Owner: user, Source: "--user"}
		if user != "" {
			keys := []string{user}
			if acc := facts.AccountsOf(env); acc.Err == nil {
				if u, ok := acc.UserByName(user); ok {
					keys = append(keys, fmt.Sprint(u.Uid))
				}
			}
			e.fromFiles(env, keys)
			return e, nil
		}
		// What the kubelet itself will use: the facts the checks judge.
		e.Owner, e.Source = remap.KubeletUser, "default"
		k := facts.KubeletIDsOf(ctx, env)
		switch {
		case k.Refusal != nil:
			e.Err = fmt.Errorf("the kubelet does not start: %s", k.Refusal)
		case !k.Known:
			e.Err = fmt.Errorf("the kubelet's range cannot be told")
		case k.Default:
			d := Range{Range: k.Range, Where: "the kubelet's default"}
			e.UID, e.GID, e.Default = []Range{d}, []Range{d}, true
			e.Note = "the kubelet uses its default range"
			if k.User.Where != "" && !k.User.Found {
				e.Note = fmt.Sprintf("no %q user (%s)", remap.KubeletUser, k.User.Where)
			}
		default:
			where := "`getsubids kubelet`"
			if k.Derived != "" {
				where += " (" + k.Derived + ")"
			}
			e.UID = []Range{{Range: k.Range, Where: where}}
			e.GID = []Range{{Range: k.Range, Where: strings.Replace(where, "getsubids", "getsubids -g", 1)}}
		}
		return e, nil
	})
	return e
}

// inside reports whether every line of m lies within one of rs.
func inside(m []procfs.IDMap, rs []Range) (bad []procfs.IDMap) {
	for _, l := range m {
		ok := false
		for _, r := range rs {
			if l.Outside >= r.Start && l.OutsideEnd() <= r.End() {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, l)
		}
	}
	return bad
}
