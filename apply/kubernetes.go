package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/ids"
	"github.com/usernsctl/usernsctl/remap"
)

// planKubernetes gives the kubelet its own ranges (a `kubelet` user with
// one 65536-aligned range, identical in both files, for maxPods pods) and
// the containerd settings the host needs.
func (a *applier) planKubernetes(ctx context.Context, p *plan) error {
	k := facts.KubeletConfigOf(p.env)
	if k.Err != nil {
		return inputErr(fmt.Errorf("%w\nnothing was written: fix the kubelet config, then run apply again", k.Err))
	}
	maxPods, from := k.MaxPods, k.MaxPodsFrom
	if a.opts.MaxPods > 0 {
		maxPods, from = a.opts.MaxPods, "--max-pods"
	}
	if maxPods <= 0 {
		maxPods, from = facts.DefaultMaxPods, "the kubelet's default"
	}
	idsPerPod := uint64(facts.DefaultIDsPerPod)
	if k.IDsPerPodSet && p.env.KubeAtLeast("1.35") {
		idsPerPod = uint64(k.IDsPerPod)
	}
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
	if !p.env.Run.Installed("getsubids") {
		return &errs.Refusal{
			Reason: "getsubids is not installed: with a kubelet user and no getsubids the kubelet does not start (`kubelet mappings: exec: \"getsubids\": executable file not found in $PATH`)",
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
		p.note("kubelet range sized for maxPods %d (%s) × %d ids per pod", maxPods, from, idsPerPod)
		if err := podsFit(p, r.Range); err != nil {
			return err
		}
		p.restart("kubelet")
	}
	return a.planContainerd(ctx, p)
}

// podsFit refuses a new range while pods on the node still hold mappings
// outside it: the kubelet persists each pod's mapping and refuses to start
// (`record pod mappings: id N is out of range`) when one no longer fits.
func podsFit(p *plan, r ids.Range) error {
	files, _ := p.env.Host.Glob("/var/lib/kubelet/pods/*/userns")
	var outside []string
	for _, f := range files {
		b, err := p.env.Host.ReadFile(f)
		if err != nil {
			continue
		}
		for _, m := range hostMappings(b) {
			if m.Start < r.Start || m.End() > r.End() {
				outside = append(outside, fmt.Sprintf("%s (%s)", path.Base(path.Dir(f)), m))
			}
		}
	}
	if len(outside) == 0 {
		return nil
	}
	sort.Strings(outside)
	return &errs.Refusal{
		Reason: fmt.Sprintf("pods on this node hold user namespace mappings outside the new kubelet range %s: %s; the kubelet would not start (`record pod mappings: id N is out of range`)", r, strings.Join(outside, ", ")),
		Fix:    "drain the node (`kubectl drain NODE`) so that no user-namespaced pod remains, then run apply again",
	}
}

// hostMappings reads the host side of a pod's persisted mapping
// (/var/lib/kubelet/pods/UID/userns: {"uidMappings":[{"hostId":N,
// "containerId":0,"length":L}], "gidMappings":[...]}).
func hostMappings(b []byte) []ids.Range {
	var doc struct {
		UID []struct {
			HostID uint64 `json:"hostId"`
			Length uint64 `json:"length"`
		} `json:"uidMappings"`
		GID []struct {
			HostID uint64 `json:"hostId"`
			Length uint64 `json:"length"`
		} `json:"gidMappings"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	var out []ids.Range
	for _, m := range doc.UID {
		out = append(out, ids.Range{Start: m.HostID, Count: m.Length})
	}
	for _, m := range doc.GID {
		out = append(out, ids.Range{Start: m.HostID, Count: m.Length})
	}
	return out
}
