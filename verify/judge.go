package verify

import (
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/verify/procfs"
)

// identityMsg is field case 25 in the operator's words.
const identityMsg = "user namespaces are not active, whatever the config says"

// judged collects per-subject findings into one result.
type judged struct {
	good, bad, unread []string
}

func (j *judged) result(remedy string, ok func(lines string) string, fail func(lines string) string) checks.Result {
	switch {
	case len(j.bad) > 0:
		msg := fail(strings.Join(j.bad, "\n"))
		if len(j.unread) > 0 {
			msg += "\n" + strings.Join(j.unread, "\n")
		}
		return checks.Failf(remedy, "%s", msg)
	case len(j.unread) > 0:
		return checks.Failf("run usernsctl verify as root on the container's host, while the container runs",
			"%s", strings.Join(j.unread, "\n"))
	}
	return checks.Passf("%s", ok(strings.Join(j.good, "\n")))
}

// judgeUserns: every subject runs in a user namespace other than its
// runtime's. remedy explains how to get one for this target.
func judgeUserns(env *checks.Env, ss []*Subject, fallback *reference, remedy func(bad []*Subject) string) checks.Result {
	var j judged
	var bad []*Subject
	for _, s := range ss {
		if s.Proc == nil {
			continue
		}
		iso := isolate(env, s, fallback)
		switch {
		case iso.err != nil:
			j.unread = append(j.unread, fmt.Sprintf("%s: cannot compare user namespaces: %v", s.Label(), iso.err))
		case iso.own:
			j.good = append(j.good, fmt.Sprintf("%s runs in user namespace %d; %s in %d", s.Label(), iso.ino, iso.ref.desc, iso.ref.ino))
		default:
			why := ""
			if s.UsernsMode == "host" {
				why = " (it was started with --userns=host)"
			}
			j.bad = append(j.bad, fmt.Sprintf("%s runs in the user namespace of %s, %d%s: its root is the runtime's root", s.Label(), iso.ref.desc, iso.ino, why))
			bad = append(bad, s)
		}
	}
	r := j.result(remedyOr(remedy, bad),
		func(l string) string { return l },
		func(l string) string { return l })
	return r.With("subjects", subjectsEvidence(ss))
}

func remedyOr(f func([]*Subject) string, bad []*Subject) string {
	if len(bad) == 0 || f == nil {
		return ""
	}
	return f(bad)
}

// mapProblem says what is wrong with a subject's map before any range
// comparison: unreadable, the identity map (field case 25), or a map that
// belongs to the runtime's own namespace (the subject shares it, so the
// map is relative to usernsctl's parent namespace: nested setups).
func mapProblem(env *checks.Env, s *Subject, gid bool, fallback *reference) (m []procfs.IDMap, problem string, unread bool) {
	p := s.Proc
	m, err := p.UIDMap, p.UIDErr
	if gid {
		m, err = p.GIDMap, p.GIDErr
	}
	file := procfs.Dir(s.PID) + "/" + mapFile(gid)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", s.Label(), err), true
	}
	if procfs.Identity(m) {
		why := ""
		if s.UsernsMode == "host" {
			why = " (it was started with --userns=host, which shows the identity map even on a remapped daemon)"
		}
		return m, fmt.Sprintf("%s: %s is `%s`: %s%s", s.Label(), file, procfs.FormatMap(m), identityMsg, why), false
	}
	if iso := isolate(env, s, fallback); iso.err == nil && !iso.own {
		return m, fmt.Sprintf("%s: %s reads `%s`, but the process shares the user namespace of %s, %d: that map is the namespace usernsctl itself runs in, not one made for the container; %s",
			s.Label(), file, procfs.FormatMap(m), iso.ref.desc, iso.ino, identityMsg), false
	}
	return m, "", false
}

// judgeDockerMap: each subject's map is exactly dockerd's map of the
// remap user's ranges (container id 0 at the start of the first range).
func judgeDockerMap(env *checks.Env, ss []*Subject, e *Expect, gid bool, remedy string) checks.Result {
	var j judged
	want := DockerMap(e.Ranges(gid))
	sorted := DockerMap(sortedRanges(e.Ranges(gid)))
	for _, s := range ss {
		if s.Proc == nil {
			continue
		}
		m, problem, unread := mapProblem(env, s, gid, nil)
		file := procfs.Dir(s.PID) + "/" + mapFile(gid)
		switch {
		case unread:
			j.unread = append(j.unread, problem)
		case problem != "":
			j.bad = append(j.bad, problem)
		case len(want) == 0:
			j.bad = append(j.bad, fmt.Sprintf("%s: %s is `%s`, but %s, so it cannot be checked", s.Label(), file, procfs.FormatMap(m), e.describe(gid)))
		case sameMap(m, want):
			j.good = append(j.good, fmt.Sprintf("%s: %s is `%s`: container root is host %s %d, the start of %s", s.Label(), file, procfs.FormatMap(m), idWord(gid), m[0].Outside, e.describe(gid)))
		case sameMap(m, sorted):
			j.good = append(j.good, fmt.Sprintf("%s: %s is `%s`: %s, mapped lowest start first (this dockerd sorts an owner's ranges)", s.Label(), file, procfs.FormatMap(m), e.describe(gid)))
		default:
			j.bad = append(j.bad, fmt.Sprintf("%s: %s is `%s`, want `%s` for %s (from %s)", s.Label(), file, procfs.FormatMap(m), procfs.FormatMap(want), e.describe(gid), e.Source))
		}
	}
	r := j.result(remedy, func(l string) string { return l }, func(l string) string { return l })
	return r.With("want", procfs.FormatMap(want)).With("subjects", subjectsEvidence(ss))
}

func idWord(gid bool) string {
	if gid {
		return "gid"
	}
	return "uid"
}

func sameMap(a, b []procfs.IDMap) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
