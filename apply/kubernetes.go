package apply

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/ids"
	"github.com/usernsctl/usernsctl/remap"
)

// planKubernetes gives the kubelet its own ranges (a `kubelet` user with
// one range aligned to the per-pod block, identical in both files, for
// maxPods pods, ending below the kernel's bound) and the containerd
// settings the host needs.
func (a *applier) planKubernetes(ctx context.Context, p *plan) error {
	k := facts.KubeletConfigOf(p.env)
	if k.Err != nil {
		return inputErr(fmt.Errorf("%w\nnothing was written: fix the kubelet config, then run apply again", k.Err))
	}
	x := facts.KubeletIDsOf(ctx, p.env)
	maxPods, from := k.MaxPods, k.MaxPodsFrom
	if maxPods <= 0 {
		maxPods, from = facts.DefaultMaxPods, "the kubelet's default"
	}
	if a.opts.MaxPods > 0 {
		// The kubelet refuses a range of fewer blocks than its own
		// maxPods: --max-pods can size for more pods, never fewer.
		if a.opts.MaxPods < maxPods {
			return &errs.Refusal{
				Reason: fmt.Sprintf("--max-pods %d is below the kubelet's maxPods %d (%s): a range for %d pods stops the kubelet (`kubelet user assigned IDs are not enough to support %d pods`)", a.opts.MaxPods, maxPods, from, a.opts.MaxPods, maxPods),
				Fix:    fmt.Sprintf("set maxPods: %d in the kubelet config first, or run apply without --max-pods", a.opts.MaxPods),
			}
		}
		maxPods, from = a.opts.MaxPods, "--max-pods"
	}
	// The per-pod block as the kubelet of this version uses it (idsPerPod
	// from 1.35, 65536 before), the same as subid.kubelet judges.
	idsPerPod := x.Unit
	// The kubelet reads its range only through getsubids: writing the
	// files helps only where getsubids reads them, and a kubelet user with
	// no getsubids stops the kubelet.
	if ns := facts.NSSwitchOf(p.env); ns.Err == nil && !ns.Subid.Files() {
		return &errs.Refusal{
			Reason: fmt.Sprintf("%s:%d `subid: %s`: getsubids, and so the kubelet, takes subordinate ids from %s, not from /etc/subuid and /etc/subgid: writing the files would change nothing the kubelet reads",
				facts.NSSwitchFile, ns.Subid.Line, ns.Subid.Service, ns.Subid.Library()),
			Fix: fmt.Sprintf("give user %q one range in the directory (start and count multiples of %d, count ≥ %d), or set `subid: files` in %s and run apply again",
				remap.KubeletUser, idsPerPod, remap.KubeletCount(maxPods, idsPerPod), facts.NSSwitchFile),
		}
	}
	if u := x.User; u.Found && !u.Files {
		return &errs.Refusal{
			Reason: fmt.Sprintf("user %q comes from %s, not %s: apply manages local accounts only", remap.KubeletUser, u.Where, facts.PasswdFile),
			Fix:    fmt.Sprintf("give user %q its range where the account lives, or remove it there and run apply again", remap.KubeletUser),
		}
	}
	if where, why := facts.KubeletGetsubids(p.env); where == "" {
		return &errs.Refusal{
			Reason: "getsubids is not found (" + why + "): with a kubelet user and no getsubids the kubelet does not start (`kubelet mappings: exec: \"getsubids\": executable file not found in $PATH`)",
			Fix:    "install getsubids (Debian/Ubuntu: `apt-get install uidmap`; Fedora/RHEL: `dnf install shadow-utils-subid`) on the kubelet's PATH, then run apply again",
		}
	}
	uid, err := p.ensureAccount(remap.KubeletUser, remap.KubeletUser, "usernsctl kubelet user namespace ids")
	if err != nil {
		return err
	}
	d, err := p.loginDefs()
	if err != nil {
		return err
	}
	req := remap.KubeletRequest(max(d.SubUIDMin.Value, d.SubGIDMin.Value), maxPods, idsPerPod)
	uidF, _, err := p.subids()
	if err != nil {
		return err
	}
	before := len(uidF.Ranges())
	if err := a.ensureRanges(p, remap.Goal{
		Keys:      []string{remap.KubeletUser, strconv.Itoa(uid)},
		Owner:     remap.KubeletUser,
		Request:   req,
		Kubelet:   true,
		MaxPods:   maxPods,
		IDsPerPod: idsPerPod,
	}); err != nil {
		return err
	}
	if len(uidF.Ranges()) != before {
		r := uidF.Ranges()[len(uidF.Ranges())-1].Range
		p.note("kubelet range sized for maxPods %d (%s) × %d ids per pod (%s)", maxPods, from, idsPerPod, x.UnitWhy)
		if err := podsFit(p, r.Range, idsPerPod); err != nil {
			return err
		}
		p.restart("kubelet")
	}
	return a.planContainerd(ctx, p)
}

// podsFit refuses a new range while pods on the node still hold records
// the kubelet would not take back with it: it persists each pod's mapping
// in <root-dir>/pods/<uid>/userns and refuses to start on one outside its
// range or of another length (kubelet.pod_mappings judges the same
// records through remap.CheckPodRecords).
func podsFit(p *plan, r ids.Range, unit uint64) error {
	pods := facts.KubeletPodsOf(p.env)
	if pods.Err != nil {
		return &errs.Refusal{
			Reason: fmt.Sprintf("the pods' user namespace records under %s cannot be read (%v): a new kubelet range could strand them", pods.Dir, pods.Err),
			Fix:    "make them readable (kubelet.pod_mappings names the failure), then run apply again",
		}
	}
	vs := remap.CheckPodRecords(pods.Records, r, unit)
	if len(vs) == 0 {
		return nil
	}
	var bad []string
	for _, v := range vs {
		bad = append(bad, fmt.Sprintf("%s (%s: `%s`)", v.Pod, v.Reason, v.Kubelet))
	}
	sort.Strings(bad)
	return &errs.Refusal{
		Reason: fmt.Sprintf("pods on this node hold user namespace records the kubelet would refuse with the new range %s (%d ids per pod): %s; the kubelet would not start (`record pod mappings: …`)", r, unit, strings.Join(bad, ", ")),
		Fix:    "drain the node (`kubectl drain NODE --ignore-daemonsets`) so that no user-namespaced pod remains, then run apply again",
	}
}
