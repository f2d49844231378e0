package subid

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/ids"
	"github.com/usernsctl/usernsctl/remap"
)

const applyKube = "`usernsctl apply --target kubernetes`"

// kubeletLimits are maxPods and idsPerPod as the kubelet will use them, and
// where they came from.
func kubeletLimits(env *checks.Env) (maxPods int, idsPerPod uint64, src string) {
	maxPods, idsPerPod = facts.DefaultMaxPods, remap.KubeletUnit
	kc := facts.KubeletConfigOf(env)
	if kc.Err != nil {
		return maxPods, idsPerPod, fmt.Sprintf("maxPods %d assumed: %s does not load (%v)", maxPods, kc.Path, kc.Err)
	}
	if kc.MaxPods > 0 {
		maxPods = kc.MaxPods
	}
	from := kc.MaxPodsFrom
	if from == "" || from == "default" {
		from = "the default"
		if !kc.Exists {
			from += fmt.Sprintf("; no kubelet config at %s", kc.Path)
		}
	}
	src = fmt.Sprintf("maxPods %d from %s", maxPods, from)
	if kc.IDsPerPodSet && kc.IDsPerPod > 0 {
		// userNamespaces.idsPerPod is honoured from Kubernetes 1.35.
		if env.KubeAtLeast("1.35") {
			idsPerPod = uint64(kc.IDsPerPod)
			src += fmt.Sprintf(", idsPerPod %d from %s", idsPerPod, kc.IDsPerPodFrom)
		} else {
			src += fmt.Sprintf(", idsPerPod %d (%s) ignored before Kubernetes 1.35", kc.IDsPerPod, kc.IDsPerPodFrom)
		}
	}
	return maxPods, idsPerPod, src
}

func checkKubelet(ctx context.Context, env *checks.Env) checks.Result {
	maxPods, idsPerPod, limits := kubeletLimits(env)
	ev := func(r checks.Result) checks.Result {
		return r.With("max_pods", maxPods).With("ids_per_pod", idsPerPod)
	}
	acc := facts.AccountsOf(env)
	if acc.Err != nil {
		return ev(checks.Warnf("make /etc/passwd readable", "cannot tell whether a %q user exists: %v", remap.KubeletUser, acc.Err))
	}
	u, userOK := acc.UserByName(remap.KubeletUser)
	keys := []string{remap.KubeletUser}
	if userOK {
		keys = append(keys, strconv.Itoa(u.Uid))
	}

	// What the files say, for messages and for hosts without getsubids.
	s := facts.SubIDsOf(env)
	fileUID, fileGID := fileRange(s.UID.File, keys), fileRange(s.GID.File, keys)
	fileNote := ""
	if len(fileUID.Ranges)+len(fileGID.Ranges) > 0 {
		if vs := remap.CheckKubelet(fileUID, fileGID, maxPods, idsPerPod); len(vs) > 0 {
			fileNote = "; the kubelet lines in the files would be refused too: " + violations(vs)
		}
	}

	def := fmt.Sprintf("%d-%d", remap.KubeletDefault.Start, remap.KubeletDefault.End()-1)
	if !userOK {
		return ev(checks.Warnf(applyKube+" (creates the kubelet user and one 65536-aligned range in both files)",
			"no %q user in %s: the kubelet silently uses its default range %s, every id above 65535, overlapping any range in %s and %s%s",
			remap.KubeletUser, facts.PasswdFile, def, s.UID.Path, s.GID.Path, fileNote))
	}
	gu := facts.GetsubidsOf(ctx, env, remap.KubeletUser, false)
	if !gu.Installed {
		install := "install getsubids on the kubelet's PATH (Debian/Ubuntu: `apt-get install uidmap`; Fedora/RHEL: `dnf install shadow-utils-subid`)"
		if !userNSGateOn(env) {
			return ev(checks.Warnf(install+" before turning UserNamespacesSupport on",
				"getsubids is not installed and user %q exists: with the UserNamespacesSupport gate off (the default before 1.33) the kubelet ignores both, but once it is on the kubelet does not start%s",
				remap.KubeletUser, fileNote).With("getsubids", false))
		}
		// getKubeletMappings tests os.IsNotExist on exec.LookPath's error,
		// which exec.ErrNotFound never is (v1.30–v1.36).
		return ev(checks.Failf(install+", or remove the kubelet user",
			"getsubids is not installed while user %q exists: the kubelet does not start (`failed to create kubelet: create user namespace manager: kubelet mappings: exec: \"getsubids\": executable file not found in $PATH`)%s",
			remap.KubeletUser, fileNote).With("getsubids", false))
	}
	gg := facts.GetsubidsOf(ctx, env, remap.KubeletUser, true)

	// The kubelet runs getsubids; judge what it prints.
	for _, g := range []*facts.Getsubids{gu, gg} {
		switch {
		case g.NoRanges:
			ids := "ids"
			if g == gg {
				ids = "gids"
			}
			return ev(checks.Failf(directoryRemedy(env, maxPods, idsPerPod, applyKube),
				"`%s` prints %q: with user %q and getsubids present the kubelet fails to start with `error retrieving additional %s for user %q`%s",
				g.Command, g.Output, remap.KubeletUser, ids, remap.KubeletUser, sourceHint(env)).With("getsubids", true))
		case g.Err != nil:
			return ev(checks.Failf(fmt.Sprintf("run `%s` by hand and fix what it reports", g.Command),
				"`%s` failed: %v; the kubelet would fail to start", g.Command, g.Err).With("getsubids", true))
		}
	}
	uid, gid := getsubidsRange(gu), getsubidsRange(gg)
	r := ev(checks.Result{}).With("getsubids", true).
		With("subuid", remap.GetsubidsOutput(remap.KubeletUser, uid.Ranges)).
		With("subgid", remap.GetsubidsOutput(remap.KubeletUser, gid.Ranges))
	if vs := remap.CheckKubelet(uid, gid, maxPods, idsPerPod); len(vs) > 0 {
		r.Status = checks.Fail
		r.Message = fmt.Sprintf("the kubelet refuses the range getsubids reports (`%s`: %q; %s): %s%s", gu.Command, gu.Output, limits, violations(vs), sourceHint(env))
		if ns := facts.NSSwitchOf(env); !ns.Subid.Files() {
			r.Remedy = directoryRemedy(env, maxPods, idsPerPod, "")
			return r
		}
		r.Remedy = fmt.Sprintf("replace the kubelet's lines with one range, start and count multiples of %d, count ≥ %d: delete them and run %s",
			idsPerPod, remap.KubeletCount(maxPods, idsPerPod), applyKube)
		sg := newSuggester(env)
		sg.load()
		if sug, ok := sg.nextAligned(remap.KubeletRequest(sg.req.Min, maxPods, idsPerPod)); ok {
			r.Remedy += fmt.Sprintf(" (a free range now: %s:%d:%d in both files)", remap.KubeletUser, sug.Start, sug.Count)
		}
		return r
	}
	k := uid.Ranges[0]
	r.Status = checks.Pass
	r.Message = fmt.Sprintf("getsubids gives user %q one range %d:%d for uids and gids: %s of %d ids (%s)",
		remap.KubeletUser, k.Start, k.Count, checks.Count(int(k.Count/idsPerPod), "pod"), idsPerPod, limits)
	return r
}

// userNSGateOn reports whether the kubelet reads its mappings at all: the
// UserNamespacesSupport gate, on by default from 1.33, else as the
// kubelet config sets it.
func userNSGateOn(env *checks.Env) bool {
	if v, set := facts.KubeletConfigOf(env).GateSet("UserNamespacesSupport"); set {
		return v
	}
	return env.KubeAtLeast("1.33")
}

// nextAligned is next for a request with its own bounds and alignment.
func (s *suggester) nextAligned(req remap.Request) (ids.Range, bool) {
	start, err := remap.Allocate(s.used, req)
	if err != nil {
		return ids.Range{}, false
	}
	r := ids.Range{Start: start, Count: req.Count}
	s.used = append(s.used, r)
	return r, true
}

// directoryRemedy is the fix when getsubids reads a directory (`subid: sss`)
// rather than the files, which usernsctl apply writes; filesFix is returned
// unchanged when the files are the source.
func directoryRemedy(env *checks.Env, maxPods int, idsPerPod uint64, filesFix string) string {
	ns := facts.NSSwitchOf(env)
	if ns.Subid.Files() {
		return filesFix
	}
	return fmt.Sprintf("give user %q one range in the directory %s serves (%s:%d `subid: %s`), start and count multiples of %d, count ≥ %d; or set `subid: files` in %s and run %s, which writes /etc/subuid and /etc/subgid",
		remap.KubeletUser, ns.Subid.Library(), facts.NSSwitchFile, ns.Subid.Line, ns.Subid.Service, idsPerPod, remap.KubeletCount(maxPods, idsPerPod), facts.NSSwitchFile, applyKube)
}

// sourceHint says where getsubids looked, for a "no ranges" finding.
func sourceHint(env *checks.Env) string {
	ns := facts.NSSwitchOf(env)
	if !ns.Subid.Files() {
		return fmt.Sprintf(" (getsubids asks %s per %s:%d, not the files)", ns.Subid.Library(), facts.NSSwitchFile, ns.Subid.Line)
	}
	return ""
}

func fileRange(f *subid.File, keys []string) remap.KubeletRange {
	var k remap.KubeletRange
	for _, l := range linesFor(f, keys) {
		k.Ranges = append(k.Ranges, l.Range.Range)
		k.Where = append(k.Where, where(f, l.No))
	}
	return k
}

func getsubidsRange(g *facts.Getsubids) remap.KubeletRange {
	var k remap.KubeletRange
	for i, r := range g.Ranges {
		k.Ranges = append(k.Ranges, r.Range)
		k.Where = append(k.Where, fmt.Sprintf("`%s` line %d", g.Command, i+1))
	}
	return k
}

func violations(vs []remap.Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}
