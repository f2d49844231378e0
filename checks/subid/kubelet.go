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
	"github.com/usernsctl/usernsctl/rules"
)

const applyKube = "`usernsctl apply --target kubernetes`"

const installGetsubids = "install getsubids on the kubelet's PATH (Debian/Ubuntu: `apt-get install uidmap`; Fedora/RHEL: `dnf install shadow-utils-subid`)"

// Where the kubelet wraps what it stops on (cmd/kubelet/app/server.go
// RunKubelet, pkg/kubelet/kubelet.go NewMainKubelet, MakeUserNsManager).
const (
	managerPrefix  = "failed to create kubelet: create user namespace manager: "
	mappingsPrefix = managerPrefix + "kubelet mappings: "
)

// limits says where maxPods and the per-pod block come from.
func limits(x *facts.KubeletIDs) string {
	return fmt.Sprintf("maxPods %d from %s; %d ids per pod: %s", x.MaxPods, x.MaxPodsWhy, x.Unit, x.UnitWhy)
}

// checkKubelet judges the range the kubelet will come by at start
// (facts.KubeletIDs). With UserNamespacesSupport off the kubelet looks at
// none of it: what would go wrong once it is on is said, as a warning.
func checkKubelet(ctx context.Context, env *checks.Env) checks.Result {
	x := facts.KubeletIDsOf(ctx, env)
	r := gateOn(ctx, env, x)
	r = r.With("max_pods", x.MaxPods).With("ids_per_pod", x.Unit).With("gate", x.Gate).With("gate_from", x.GateWhy)
	if x.Derived != "" {
		r = r.With("derived", x.Derived)
		r.Message += "; " + x.Derived
	}
	if x.Gate {
		return r
	}
	// 1.30–1.34 build the manager with the default range even with the
	// gate off, and refuse one too small for maxPods.
	if !env.KubeAtLeast(rules.KubeletIDsPerPodHonoured.Value) {
		for _, v := range remap.CheckKubeletRange(remap.KubeletDefault, x.MaxPods, remap.KubeletUnit) {
			if v.Rule == "count-pods" {
				return checks.Failf(fmt.Sprintf("lower maxPods to at most %d (%s), then restart the kubelet", remap.KubeletDefault.Count/remap.KubeletUnit, x.MaxPodsWhy),
					"the gate is off (%s), but the kubelet still checks its default range: %s; it does not start (`%s%s`)", x.GateWhy, v.Reason, managerPrefix, v.Kubelet).
					With("max_pods", x.MaxPods).With("gate", false)
			}
		}
	}
	ignored := fmt.Sprintf("ignored until the gate is on (%s): the kubelet reads no kubelet user, getsubids or ID files while it is off", x.GateWhy)
	switch r.Status {
	case checks.Fail:
		r.Status = checks.Warn
		r.Message = ignored + "; once it is on: " + r.Message
		r.Remedy += ", before turning UserNamespacesSupport on"
	default:
		r.Status = checks.Pass
		r.Message = ignored + "; once it is on: " + r.Message
		r.Remedy = ""
	}
	return r
}

// gateOn is the verdict with the gate on.
func gateOn(ctx context.Context, env *checks.Env, x *facts.KubeletIDs) checks.Result {
	u := x.User
	switch {
	case u.Err != nil:
		return checks.Failf(fmt.Sprintf("make %s a readable file again (root:root, mode 0644), then restart the kubelet", facts.PasswdFile),
			"user.Lookup(%q) fails: %v: the kubelet only falls back to its default range when the user is unknown, so it does not start (a kubelet built without cgo: `%s%v`)",
			remap.KubeletUser, u.Err, mappingsPrefix, u.Err)
	case !u.Found:
		return defaultRange(env, x)
	}
	if x.Getsubids == "" {
		return checks.Failf(installGetsubids+", or remove the kubelet user",
			"getsubids is not found (%s) while user %q exists (%s): the kubelet does not start (`%sexec: \"getsubids\": executable file not found in $PATH`); it falls back to its default range only when the user is missing%s",
			x.GetsubidsWhy, remap.KubeletUser, u.Where, mappingsPrefix, filesNote(env, x)).With("getsubids", false)
	}
	r := checks.Result{}.With("getsubids", true).With("subuid", x.UIDOut).With("subgid", x.GIDOut)
	if x.RunErr != nil {
		r.Status, r.Remedy = checks.Fail, "run `getsubids kubelet` and `getsubids -g kubelet` by hand and fix what they report"
		r.Message = fmt.Sprintf("getsubids could not be run for user %q: %v; the kubelet would not start", remap.KubeletUser, x.RunErr)
		return r
	}
	if v := x.Refusal; v != nil {
		r.Status = checks.Fail
		r.Message = fmt.Sprintf("%s: the kubelet does not start (`%s%s`)%s", v.Reason, mappingsPrefix, v.Kubelet, sourceHint(env))
		r.Remedy = rangeRemedy(env, x)
		if vs := fileViolations(env, x); vs != "" && facts.NSSwitchOf(env).Subid.Files() {
			r.Message += "; the kubelet lines in the files break more: " + vs
		}
		return r
	}
	if vs := remap.CheckKubeletRange(x.Range, x.MaxPods, x.Unit); len(vs) > 0 {
		r.Status = checks.Fail
		r.Message = fmt.Sprintf("the kubelet's range as getsubids reports it (`getsubids %s`: %q; %s) is refused: %s%s",
			remap.KubeletUser, strings.TrimSuffix(x.UIDOut, "\n"), limits(x), rangeViolations(vs), sourceHint(env))
		r.Remedy = rangeRemedy(env, x)
		return r
	}
	k := x.Range
	r.Status = checks.Pass
	r.Message = fmt.Sprintf("getsubids gives user %q (%s) one range %d:%d for uids and gids: %s of %d ids, ending at or below %d (%s)",
		remap.KubeletUser, u.Where, k.Start, k.Count, checks.Count(int(k.Count/x.Unit), "pod"), x.Unit, rules.KernelMapEndID-x.Unit+1, limits(x))
	return r
}

// rangeViolations renders the kubelet's refusals with its full text; the
// top-of-range rules have no kubelet text (the kubelet starts).
func rangeViolations(vs []remap.Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if v.Kubelet != "" {
			parts[i] = fmt.Sprintf("%s (the kubelet does not start: `%s%s`)", v.Reason, managerPrefix, v.Kubelet)
		} else {
			parts[i] = v.Reason
		}
	}
	return strings.Join(parts, "; ")
}

// defaultRange judges the kubelet's default range (no kubelet user): from
// 1.35 it starts at idsPerPod and runs to 2^32, so an idsPerPod that is
// not a power of two or leaves fewer than maxPods blocks stops the
// kubelet; in every version its top block ends at 2^32, which the kernel
// refuses to map.
func defaultRange(env *checks.Env, x *facts.KubeletIDs) checks.Result {
	d := x.Range
	s := facts.SubIDsOf(env)
	var hard, top []remap.Violation
	for _, v := range remap.CheckKubeletRange(d, x.MaxPods, x.Unit) {
		if v.Rule == remap.RuleTopBlock {
			top = append(top, v)
		} else {
			hard = append(hard, v)
		}
	}
	if len(hard) > 0 {
		fix := fmt.Sprintf("set userNamespaces.idsPerPod to a power of two of at most %d ids (%s), or give the kubelet its own range: %s", maxPow2(x.MaxPods), x.UnitWhy, applyKube)
		if x.Unit == remap.KubeletUnit {
			fix = fmt.Sprintf("lower maxPods to at most %d (%s), then restart the kubelet", d.Count/x.Unit, x.MaxPodsWhy)
		}
		return checks.Failf(fix,
			"no %q user (%s): the kubelet uses its default range %d-%d (%s), and refuses it: %s",
			remap.KubeletUser, x.User.Where, d.Start, d.End()-1, limits(x), rangeViolations(hard))
	}
	msg := fmt.Sprintf("no %q user (%s): the kubelet silently uses its default range %d-%d (%s), every id from %d up, overlapping any range in %s and %s",
		remap.KubeletUser, x.User.Where, d.Start, d.End()-1, limits(x), d.Start, s.UID.Path, s.GID.Path)
	if len(top) > 0 {
		msg += fmt.Sprintf("; its top block %d-%d ends at 2^32, which the kernel refuses to map (an extent must end at or below %s): 1 pod in %d gets it, at random, and never starts until it is deleted",
			d.End()-x.Unit, d.End()-1, rules.KernelMapEnd, d.Count/x.Unit)
	}
	remedy := applyKube + " (creates the kubelet user and one range in both files, aligned to the per-pod block and ending below the kernel's bound)"
	if x.User.Unsure != "" {
		msg += "; but " + x.User.Unsure
		remedy = fmt.Sprintf("run `getent passwd %s`: if it prints the user, the kubelet runs getsubids for it; otherwise %s", remap.KubeletUser, remedy)
	}
	return checks.Warnf(remedy, "%s%s", msg, filesNote(env, x))
}

// maxPow2 is the largest idsPerPod whose default range holds maxPods
// pods: 2^32/idsPerPod − 1 ≥ maxPods.
func maxPow2(maxPods int) uint64 {
	u := uint64(1) << 31
	for u > remap.KubeletUnit && subid.Space/u-1 < uint64(max(maxPods, 0)) {
		u >>= 1
	}
	return u
}

// fileViolations judges the kubelet user's lines in the files (which
// getsubids prints with `subid: files`).
func fileViolations(env *checks.Env, x *facts.KubeletIDs) string {
	s := facts.SubIDsOf(env)
	keys := []string{remap.KubeletUser}
	if x.User.Found {
		keys = append(keys, strconv.Itoa(x.User.UID))
	}
	fu, fg := fileRange(s.UID.File, keys), fileRange(s.GID.File, keys)
	if len(fu.Ranges)+len(fg.Ranges) == 0 {
		return ""
	}
	return violations(remap.CheckKubelet(fu, fg, x.MaxPods, x.Unit))
}

func filesNote(env *checks.Env, x *facts.KubeletIDs) string {
	if vs := fileViolations(env, x); vs != "" {
		return "; the kubelet lines in the files would be refused too: " + vs
	}
	return ""
}

// rangeRemedy is the fix for a range the kubelet refuses.
func rangeRemedy(env *checks.Env, x *facts.KubeletIDs) string {
	if ns := facts.NSSwitchOf(env); !ns.Subid.Files() {
		return directoryRemedy(env, x.MaxPods, x.Unit, "")
	}
	r := fmt.Sprintf("replace the kubelet's lines with one range in both files, start and count multiples of %d, count ≥ %d, ending at or below %d: delete them and run %s",
		x.Unit, remap.KubeletCount(x.MaxPods, x.Unit), rules.KernelMapEndID-x.Unit+1, applyKube)
	sg := newSuggester(env)
	sg.load()
	if sug, ok := sg.nextAligned(remap.KubeletRequest(sg.req.Min, x.MaxPods, x.Unit)); ok {
		r += fmt.Sprintf(" (a free range now: %s:%d:%d in both files)", remap.KubeletUser, sug.Start, sug.Count)
	}
	return r
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
	return fmt.Sprintf("give user %q one range in the directory %s serves (%s:%d `subid: %s`), start and count multiples of %d, count ≥ %d, ending at or below %d; or set `subid: files` in %s and run %s, which writes /etc/subuid and /etc/subgid",
		remap.KubeletUser, ns.Subid.Library(), facts.NSSwitchFile, ns.Subid.Line, ns.Subid.Service, idsPerPod, remap.KubeletCount(maxPods, idsPerPod), rules.KernelMapEndID-idsPerPod+1, facts.NSSwitchFile, applyKube)
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

func violations(vs []remap.Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}
