package remap

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/ids"
	"github.com/usernsctl/usernsctl/rules"
)

// KubeletUser is the account whose ranges the kubelet uses (1.30+).
const KubeletUser = "kubelet"

// KubeletUnit is the kubelet's user namespace unit (rules.KubeletUnit):
// idsPerPod must be a multiple of it, and it is the default idsPerPod and
// the block per pod before Kubernetes 1.35.
const KubeletUnit = rules.KubeletUnitIDs

// KubeletDefault is the range the kubelet uses when the gate is off or
// there is no kubelet user, with 65536 ids per pod: 65536 up to 2^32.
var KubeletDefault = KubeletDefaultRange(KubeletUnit)

// KubeletDefaultRange is the kubelet's default range for a per-pod block
// of unit ids (getKubeletMappings): unit up to 2^32. From Kubernetes 1.35
// the block is idsPerPod; before it is always 65536.
func KubeletDefaultRange(unit uint64) ids.Range {
	if unit == 0 || unit > subid.Space {
		unit = KubeletUnit
	}
	return ids.Range{Start: unit, Count: subid.Space - unit}
}

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

// Rules of the top of the range (CheckKubeletRange): the ids of a block
// past 2^32 wrap; a block ending at 2^32 is one the kernel never maps.
const (
	RuleWraps    = "below-2^32"
	RuleTopBlock = "kernel-top-block"
)

// KubeletCount is the smallest count that serves maxPods pods of
// idsPerPod ids each.
func KubeletCount(maxPods int, idsPerPod uint64) uint64 {
	return uint64(max(maxPods, 0)) * idsPerPod
}

// KubeletRequest is the allocation that satisfies the kubelet: Count for
// maxPods pods, aligned to idsPerPod, not below idsPerPod (the kubelet
// refuses to map id 0's block) and not below min, and ending at or below
// 2^32 - idsPerPod: the kernel refuses a map extent that ends at 2^32
// (rules.KernelMapEnd), so a range reaching 2^32 has a top block no pod
// can use.
func KubeletRequest(min uint64, maxPods int, idsPerPod uint64) Request {
	if idsPerPod == 0 {
		idsPerPod = KubeletUnit
	}
	return Request{
		Min:   max(min, idsPerPod),
		Max:   rules.KernelMapEndID - idsPerPod,
		Count: KubeletCount(maxPods, idsPerPod),
		Align: idsPerPod,
	}
}

// The kubelet's getsubids texts (pkg/kubelet/kubelet_pods.go
// getKubeletMappings, parseGetSubIdsOutput; v1.30–v1.36).
func uidsFailed(exit int) string {
	return fmt.Sprintf("error retrieving additional uids for user %q: exit status %d", KubeletUser, exit)
}

func gidsFailed() string {
	return fmt.Sprintf("error retrieving additional gids for user %q", KubeletUser)
}

func mismatched() string {
	return fmt.Sprintf("mismatched subuids and subgids for user %q", KubeletUser)
}

// ParseKubeletMappings follows getKubeletMappings over what `getsubids
// kubelet` and `getsubids -g kubelet` printed (stdout, as the kubelet reads
// it): the two outputs must be byte for byte the same, hold one line of
// four fields, and the start and count must fit in 32 bits. It returns the
// range, or the first rule broken with the kubelet's own text, which stops
// the kubelet. uidExit and gidExit are the exit statuses (non-zero: the
// kubelet stops at once).
func ParseKubeletMappings(uidOut string, uidExit int, gidOut string, gidExit int) (ids.Range, *Violation) {
	switch {
	case uidExit != 0:
		return ids.Range{}, &Violation{Rule: "one-line", Kubelet: uidsFailed(uidExit),
			Reason: fmt.Sprintf("`getsubids %s` exits %d", KubeletUser, uidExit)}
	case gidExit != 0:
		return ids.Range{}, &Violation{Rule: "one-line", Kubelet: gidsFailed(),
			Reason: fmt.Sprintf("`getsubids -g %s` exits %d", KubeletUser, gidExit)}
	case uidOut != gidOut:
		return ids.Range{}, &Violation{Rule: "identical", Kubelet: mismatched(),
			Reason: fmt.Sprintf("`getsubids %s` prints %q and `getsubids -g %s` %q: the kubelet wants the two byte for byte the same", KubeletUser, uidOut, KubeletUser, gidOut)}
	}
	return parseGetsubidsLine(uidOut)
}

// parseGetsubidsLine is parseGetSubIdsOutput.
func parseGetsubidsLine(out string) (ids.Range, *Violation) {
	lines := strings.Split(strings.Trim(out, "\n"), "\n")
	if len(lines) != 1 {
		return ids.Range{}, &Violation{Rule: "one-line", Kubelet: fmt.Sprintf("error parsing line %q: it must contain only one line", out),
			Reason: fmt.Sprintf("getsubids lists %d ranges for user %q: the kubelet accepts exactly one", len(lines), KubeletUser)}
	}
	parts := strings.Fields(lines[0])
	if len(parts) != 4 {
		why := fmt.Sprintf("getsubids printed %q, not one line `0: %s START COUNT`", out, KubeletUser)
		if strings.TrimSpace(out) == "" {
			why = fmt.Sprintf("getsubids printed nothing and exited 0 (a subid plugin that found no range for %q reports success)", KubeletUser)
		}
		return ids.Range{}, &Violation{Rule: "one-line", Kubelet: fmt.Sprintf("invalid line %q", out), Reason: why}
	}
	var n [2]uint64
	for i, f := range parts[2:] {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return ids.Range{}, &Violation{Rule: "32-bit", Kubelet: fmt.Sprintf("error parsing line %q: %v", out, err),
				Reason: fmt.Sprintf("%q is not a 32-bit number (0..%d)", f, uint64(math.MaxUint32))}
		}
		n[i] = v
	}
	return ids.Range{Start: n[0], Count: n[1]}, nil
}

// CheckKubeletRange returns every rule of MakeUserNsManager
// (pkg/kubelet/userns/userns_manager.go) that the range r breaks, in the
// order the kubelet checks them (it stops at the first), for a block of
// unit ids per pod (idsPerPod from 1.35, 65536 before) and maxPods pods;
// then the top of the range, which no kubelet checks: a range past 2^32
// wraps to host id 0, and one that ends at 2^32 has a top block the kernel
// refuses (rules.KernelMapEnd).
func CheckKubeletRange(r ids.Range, maxPods int, unit uint64) []Violation {
	var out []Violation
	add := func(rule, kubelet, format string, a ...any) {
		out = append(out, Violation{Rule: rule, Kubelet: kubelet, Reason: fmt.Sprintf(format, a...)})
	}
	if unit == 0 {
		unit = KubeletUnit
	}
	if unit%KubeletUnit != 0 {
		add("ids-per-pod", fmt.Sprintf("kubelet user namespace length %d is not a multiple of %d", unit, KubeletUnit),
			"idsPerPod %d is not a multiple of %d", unit, KubeletUnit)
		return out // every other rule is in units of idsPerPod
	}
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
	blocks := r.Count / unit
	if blocks == 0 {
		return out
	}
	top := r.Start + blocks*unit // where the kubelet's last block ends
	switch {
	case top > subid.Space:
		add(RuleWraps, "",
			"start %d + %d blocks of %d = %d passes 2^32 (%d): every kubelet release computes block starts in 32 bits, so the blocks past it wrap to host id 0 (host root) and up; a pod that gets one runs with low host ids, and its record then stops the kubelet's next start (`id 0 is out of range`)",
			r.Start, blocks, unit, top, uint64(subid.Space))
	case top > rules.KernelMapEndID:
		add(RuleTopBlock, "",
			"the top block %d-%d ends at %d: the kernel refuses to write a uid_map extent ending past %s (`write error: Invalid argument`), so a pod that draws it (1 in %d, chosen at random and kept in its record on every retry) never starts; end the range at or below %d",
			top-unit, top-1, top, rules.KernelMapEnd, blocks, top-unit)
	}
	return out
}

// CheckKubelet returns every rule the kubelet's ranges break (nil when
// none), in the order the kubelet checks them: uid and gid are the ranges
// of user "kubelet" in /etc/subuid and /etc/subgid (getsubids lists them,
// by name or uid, in file order); unit is the block per pod (idsPerPod
// from Kubernetes 1.35, else 65536). Each side is judged on its own too,
// so that every fix can be made at once.
func CheckKubelet(uid, gid KubeletRange, maxPods int, unit uint64) []Violation {
	var out []Violation
	add := func(rule, kubelet, format string, a ...any) {
		out = append(out, Violation{Rule: rule, Kubelet: kubelet, Reason: fmt.Sprintf(format, a...)})
	}
	if len(uid.Ranges) == 0 {
		add("one-line", uidsFailed(1),
			"no subuid range for user %q: `getsubids %s` prints `Error fetching ranges` and exits 1, and the kubelet does not start", KubeletUser, KubeletUser)
	}
	if len(gid.Ranges) == 0 {
		add("one-line", gidsFailed(),
			"no subgid range for user %q: `getsubids -g %s` prints `Error fetching ranges` and exits 1, and the kubelet does not start", KubeletUser, KubeletUser)
	}
	if len(uid.Ranges) == 0 || len(gid.Ranges) == 0 {
		return out
	}
	same := GetsubidsOutput(KubeletUser, uid.Ranges) == GetsubidsOutput(KubeletUser, gid.Ranges)
	if !same {
		u, g := uid.Ranges[0], gid.Ranges[0]
		if len(uid.Ranges) == 1 && len(gid.Ranges) == 1 {
			add("identical", mismatched(),
				"the subuid range %d:%d (%s) and the subgid range %d:%d (%s) differ: they must be identical",
				u.Start, u.Count, join(uid.Where), g.Start, g.Count, join(gid.Where))
		} else {
			add("identical", mismatched(),
				"the subuid ranges (%s) and the subgid ranges (%s) differ: they must be identical", join(uid.Where), join(gid.Where))
		}
	}
	for _, side := range []struct {
		name string
		r    KubeletRange
	}{{"subuid", uid}, {"subgid", gid}} {
		if n := len(side.r.Ranges); n > 1 {
			kubelet := ""
			if same && side.name == "subuid" {
				kubelet = fmt.Sprintf("error parsing line %q: it must contain only one line", GetsubidsOutput(KubeletUser, side.r.Ranges))
			}
			add("one-line", kubelet, "%d %s ranges for user %q (%s): the kubelet accepts exactly one", n, side.name, KubeletUser, join(side.r.Where))
		}
	}
	if len(uid.Ranges) != 1 || len(gid.Ranges) != 1 {
		return out
	}
	// The kubelet reads only the subuid range once both agree; check the
	// subgid range too when they differ, so that each gets fixed at once.
	ranges := []ids.Range{uid.Ranges[0]}
	if !same {
		ranges = append(ranges, gid.Ranges[0])
	}
	for _, r := range ranges {
		if r.Start > math.MaxUint32 || r.Count > math.MaxUint32 {
			_, v := parseGetsubidsLine(GetsubidsOutput(KubeletUser, []ids.Range{r}))
			if v != nil {
				out = append(out, *v)
				continue
			}
		}
		out = append(out, CheckKubeletRange(r, maxPods, unit)...)
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

// PodRecord is one pod's persisted user namespace mapping:
// <root-dir>/pods/<uid>/userns, as the kubelet wrote it.
type PodRecord struct {
	// Pod is the pod's uid (its directory's name).
	Pod string
	// Path is the file, for messages.
	Path string
	// Data is the file's content; empty means the pod has no user
	// namespace.
	Data []byte
}

// PodViolation is a record the kubelet refuses at start.
type PodViolation struct {
	Pod, Path string
	// Kubelet is the kubelet's error text, without the "record pod
	// mappings" prefix (PodRecordError adds it).
	Kubelet string
	// Reason says why, with the values seen.
	Reason string
	// Mapping is the host range the record holds, when it parsed.
	Mapping ids.Range
}

// The record format (pkg/kubelet/userns/userns_manager.go userNamespace,
// idMapping): one uid and one gid mapping, identical.
type idMapping struct {
	HostId      uint32 `json:"hostId"`
	ContainerId uint32 `json:"containerId"`
	Length      uint32 `json:"length"`
}

type userNamespace struct {
	UIDMappings []idMapping `json:"uidMappings"`
	GIDMappings []idMapping `json:"gidMappings"`
}

// CheckPodRecords follows MakeUserNsManager over the pods' records, in
// directory order (the kubelet lists them with os.ReadDir): each must parse
// and hold one mapping of container id 0, the same for uids and gids, of
// exactly unit ids, at a multiple of unit inside r, and no two pods the
// same block (parseUserNsFileAndRecord, record; v1.30–v1.36). r and unit
// are the range and block the kubelet will use. Every bad record is
// reported; the kubelet stops at the first.
func CheckPodRecords(recs []PodRecord, r ids.Range, unit uint64) []PodViolation {
	if unit == 0 {
		unit = KubeletUnit
	}
	var out []PodViolation
	off, n := r.Start/unit, r.Count/unit
	taken := map[uint64]string{}
	for _, rec := range recs {
		if len(rec.Data) == 0 {
			continue
		}
		bad := func(m ids.Range, kubelet, format string, a ...any) {
			out = append(out, PodViolation{Pod: rec.Pod, Path: rec.Path, Kubelet: kubelet, Reason: fmt.Sprintf(format, a...), Mapping: m})
		}
		var u userNamespace
		if err := json.Unmarshal(rec.Data, &u); err != nil {
			bad(ids.Range{}, "invalid user namespace mappings file: "+err.Error(), "%s is not the kubelet's JSON", rec.Path)
			continue
		}
		const cfg = "invalid user namespace configuration: "
		switch {
		case len(u.UIDMappings) != 1:
			bad(ids.Range{}, cfg+"no more than one mapping allowed.", "%s holds %d uid mappings, not one", rec.Path, len(u.UIDMappings))
			continue
		case len(u.UIDMappings) != len(u.GIDMappings):
			bad(ids.Range{}, cfg+"GID and UID mappings should be identical.", "%s holds %d gid mappings, not one", rec.Path, len(u.GIDMappings))
			continue
		case u.UIDMappings[0] != u.GIDMappings[0]:
			bad(ids.Range{}, cfg+"GID and UID mapping should be identical", "%s maps uids and gids differently", rec.Path)
			continue
		case u.UIDMappings[0].ContainerId != 0:
			bad(ids.Range{}, cfg+"UID 0 must be mapped", "%s maps container id %d, not 0", rec.Path, u.UIDMappings[0].ContainerId)
			continue
		}
		from, length := uint64(u.UIDMappings[0].HostId), uint64(u.UIDMappings[0].Length)
		m := ids.Range{Start: from, Count: length}
		switch {
		case length != unit:
			bad(m, fmt.Sprintf("wrong user namespace length %d", length),
				"the pod holds %d ids (host %d-%d), but the kubelet now gives each pod %d (userNamespaces.idsPerPod)", length, from, from+length-1, unit)
			continue
		case from%unit != 0:
			bad(m, fmt.Sprintf("wrong user namespace offset specified %d", from),
				"the pod's host id %d is not a multiple of %d", from, unit)
			continue
		}
		idx := from / unit
		if idx < off || idx-off >= n {
			bad(m, fmt.Sprintf("id %d is out of range", from),
				"the pod holds host ids %d-%d, outside the kubelet's range %d-%d", from, from+length-1, r.Start, r.Start+n*unit-1)
			continue
		}
		if prev, dup := taken[idx]; dup {
			bad(m, fmt.Sprintf("range picked for pod %q already taken", rec.Pod),
				"the pod holds host ids %d-%d, which pod %s holds too", from, from+length-1, prev)
			continue
		}
		taken[idx] = rec.Pod
	}
	return out
}

// PodRecordError is the kubelet's whole start failure for v: `record pod
// mappings: …` before Kubernetes 1.35 (rules.KubeletPodRecordNamesPod),
// `record pod mappings for existing pod "UID": …` from it.
func PodRecordError(v PodViolation, namesPod bool) string {
	if namesPod {
		return fmt.Sprintf("failed to create kubelet: create user namespace manager: record pod mappings for existing pod %q: %s", v.Pod, v.Kubelet)
	}
	return "failed to create kubelet: create user namespace manager: record pod mappings: " + v.Kubelet
}

// PodMapping is the host range a pod's record holds (its uid mapping),
// false when the record is empty or not the kubelet's JSON.
func PodMapping(data []byte) (ids.Range, bool) {
	var u userNamespace
	if len(data) == 0 || json.Unmarshal(data, &u) != nil || len(u.UIDMappings) == 0 {
		return ids.Range{}, false
	}
	m := u.UIDMappings[0]
	return ids.Range{Start: uint64(m.HostId), Count: uint64(m.Length)}, true
}
