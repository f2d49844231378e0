package remap

import (
	"fmt"

	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/ids"
)

// KubeletUser is the account whose ranges the kubelet uses (1.30+).
const KubeletUser = "kubelet"

// KubeletUnit is the kubelet's user namespace unit: idsPerPod must be a
// multiple of it, and it is the default idsPerPod.
const KubeletUnit = 65536

// KubeletDefault is the range the kubelet uses when there is no kubelet
// user or no getsubids: 65536 up to the last id.
var KubeletDefault = ids.Range{Start: KubeletUnit, Count: subid.Space - KubeletUnit}

// KubeletRange is the kubelet's range as one source states it: the lines
// for the kubelet user in /etc/subuid or /etc/subgid, or what `getsubids`
// printed. Where names the source in messages ("/etc/subuid:7").
type KubeletRange struct {
	Ranges []ids.Range
	Where  []string
}

// Violation is one broken kubelet rule.
type Violation struct {
	// Rule is a stable short name ("one-line", "aligned-start", ...).
	Rule string
	// Kubelet is the kubelet's own error text for it, when it has one, so
	// that an operator can match it against the kubelet's log.
	Kubelet string
	// Reason explains the rule with the values seen.
	Reason string
}

func (v Violation) String() string {
	if v.Kubelet != "" {
		return fmt.Sprintf("%s (kubelet: `%s`)", v.Reason, v.Kubelet)
	}
	return v.Reason
}

// KubeletCount is the smallest count that serves maxPods pods of
// idsPerPod ids each.
func KubeletCount(maxPods int, idsPerPod uint64) uint64 {
	return uint64(max(maxPods, 0)) * idsPerPod
}

// KubeletRequest is the allocation that satisfies the kubelet: Count for
// maxPods pods, aligned to idsPerPod, not below idsPerPod (the kubelet
// refuses to map id 0's block) and not below min.
func KubeletRequest(min uint64, maxPods int, idsPerPod uint64) Request {
	return Request{
		Min:   max(min, idsPerPod),
		Max:   subid.MaxID,
		Count: KubeletCount(maxPods, idsPerPod),
		Align: idsPerPod,
	}
}

// CheckKubelet returns every rule the kubelet's ranges break (nil when
// none), in the order the kubelet checks them. uid and gid are the ranges
// of user "kubelet" in /etc/subuid and /etc/subgid (or from getsubids and
// getsubids -g). idsPerPod is userNamespaces.idsPerPod (65536 before
// Kubernetes 1.35, which ignores the setting).
//
// The kubelet's rules (pkg/kubelet: getKubeletMappings, MakeUserNsManager):
// exactly one range, identical for uids and gids; idsPerPod a multiple of
// 65536; start a multiple of idsPerPod and at least idsPerPod; count a
// multiple of idsPerPod and at least idsPerPod × maxPods. On top of those,
// start+count must not pass 2^32: a range past it wraps to host id 0 in
// some kubelets.
func CheckKubelet(uid, gid KubeletRange, maxPods int, idsPerPod uint64) []Violation {
	var out []Violation
	add := func(rule, kubelet, format string, a ...any) {
		out = append(out, Violation{Rule: rule, Kubelet: kubelet, Reason: fmt.Sprintf(format, a...)})
	}
	for _, side := range []struct {
		name, flag, ids string
		r               KubeletRange
	}{{"subuid", "", "ids", uid}, {"subgid", "-g ", "gids", gid}} {
		switch n := len(side.r.Ranges); {
		case n == 0:
			add("one-line", fmt.Sprintf("error retrieving additional %s for user %q", side.ids, KubeletUser),
				"no %s range for user %q: with that user and getsubids present, `getsubids %s%s` fails and the kubelet does not start",
				side.name, KubeletUser, side.flag, KubeletUser)
		case n > 1:
			add("one-line", fmt.Sprintf("error parsing line %q: it must contain only one line", GetsubidsOutput(KubeletUser, side.r.Ranges)),
				"%d %s ranges for user %q (%s): the kubelet accepts exactly one", n, side.name, KubeletUser, join(side.r.Where))
		}
	}
	if len(uid.Ranges) != 1 || len(gid.Ranges) != 1 {
		return out
	}
	u, g := uid.Ranges[0], gid.Ranges[0]
	if u != g {
		add("identical", fmt.Sprintf("mismatched subuids and subgids for user %q", KubeletUser),
			"the subuid range %d:%d (%s) and the subgid range %d:%d (%s) differ: they must be identical",
			u.Start, u.Count, join(uid.Where), g.Start, g.Count, join(gid.Where))
	}
	unit := idsPerPod
	if unit == 0 {
		unit = KubeletUnit
	}
	if unit%KubeletUnit != 0 {
		add("ids-per-pod", fmt.Sprintf("kubelet user namespace length %d is not a multiple of %d", unit, KubeletUnit),
			"idsPerPod %d is not a multiple of %d", unit, KubeletUnit)
		return out // every other rule is in units of idsPerPod
	}
	// The kubelet reads only the subuid range once both agree; check the
	// subgid range too when they differ, so that each gets fixed at once.
	ranges := []ids.Range{u}
	if g != u {
		ranges = append(ranges, g)
	}
	for _, r := range ranges {
		if r.Start%unit != 0 {
			add("aligned-start", fmt.Sprintf("kubelet user assigned ID %d is not a multiple of %d", r.Start, unit),
				"start %d is not a multiple of %d (nearest: %d)", r.Start, unit, alignUp(r.Start, unit))
		}
		if r.Start < unit {
			add("start-min", fmt.Sprintf("kubelet user assigned ID %d must be greater or equal to %d", r.Start, unit),
				"start %d is below %d: the kubelet never maps host id 0's block", r.Start, unit)
		}
		if r.Count%unit != 0 {
			add("aligned-count", fmt.Sprintf("kubelet user assigned IDs length %d is not a multiple of %d", r.Count, unit),
				"count %d is not a multiple of %d", r.Count, unit)
		}
		if need := KubeletCount(maxPods, unit); r.Count/unit < uint64(max(maxPods, 0)) {
			add("count-pods", fmt.Sprintf("kubelet user assigned IDs are not enough to support %d pods", maxPods),
				"count %d holds %d pod(s) of %d ids; maxPods %d needs at least %d", r.Count, r.Count/unit, unit, maxPods, need)
		}
		if r.End() > subid.Space {
			add("below-2^32", "",
				"start %d + count %d = %d passes 2^32 (%d): the range would wrap around to host id 0", r.Start, r.Count, r.End(), uint64(subid.Space))
		}
	}
	return out
}

func join(ss []string) string {
	switch len(ss) {
	case 0:
		return "no line"
	case 1:
		return ss[0]
	}
	out := ss[0]
	for _, s := range ss[1:] {
		out += ", " + s
	}
	return out
}

// GetsubidsOutput is what `getsubids [-g] owner` prints for ranges.
func GetsubidsOutput(owner string, ranges []ids.Range) string {
	out := ""
	for i, r := range ranges {
		out += fmt.Sprintf("%d: %s %d %d\n", i, owner, r.Start, r.Count)
	}
	return out
}
