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
	crlf, nonl, bom := false, false, false
	for _, p := range ps {
		text = append(text, p.Error())
		switch p.Kind {
		case subid.Comment, subid.Blank:
			del = append(del, p.Line)
		case subid.CRLF:
			crlf, severe = true, true
		case subid.NoNewline:
			nonl, severe = true, true
		case subid.BOM:
			bom, severe = true, true
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
	if bom {
		remedies = append(remedies, fmt.Sprintf("remove the byte order mark: `sed -i '1s/^\\xEF\\xBB\\xBF//' %s`", f.Name))
	}
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
