package kubelet

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/rules"
)

// podMappingsInfo describes kubelet.pod_mappings.
var podMappingsInfo = checks.Info{
	ID: "kubelet.pod_mappings", Title: "pods' user namespace records",
	Doc:     "With UserNamespacesSupport on, the kubelet reads every <root-dir>/pods/<uid>/userns at start and refuses to start on one it cannot take back: not its JSON, not one identical uid/gid mapping of container id 0, a length other than the per-pod block (idsPerPod changed), a host id off the block grid, outside the range it will use now, or taken twice; a record on the range's top block (ending at 2^32) is a pod that never starts.",
	Targets: []checks.Target{checks.Kubernetes},
}

func checkPodMappings(ctx context.Context, env *checks.Env) checks.Result {
	x := facts.KubeletIDsOf(ctx, env)
	k := facts.KubeletConfigOf(env)
	p := facts.KubeletPodsOf(env)
	ev := func(r checks.Result) checks.Result {
		return r.With("pods_dir", p.Dir).With("root_dir_from", k.RootDirFrom).With("pods", p.Pods).With("records", len(p.Records))
	}
	if !x.Gate {
		return ev(checks.Skipf("the kubelet reads no pod records while UserNamespacesSupport is off (%s)", x.GateWhy))
	}
	if !p.Exists {
		return ev(checks.Passf("no %s (root dir %s): the kubelet has no pod records to take back", p.Dir, k.RootDirFrom))
	}
	if p.Err != nil {
		return ev(checks.Failf(fmt.Sprintf("make %s and its pods' userns files readable by root, then restart the kubelet", p.Dir),
			"the kubelet cannot read its pod records: %v: it does not start (`failed to create kubelet: create user namespace manager: %v`)", p.Err, p.Err))
	}
	n := 0
	for _, r := range p.Records {
		if len(r.Data) > 0 {
			n++
		}
	}
	if n == 0 {
		return ev(checks.Passf("%s: %s, none with a user namespace record", p.Dir, checks.Count(p.Pods, "pod directory")))
	}
	if !x.Known {
		why := "it cannot tell its range"
		if x.Refusal != nil {
			why = x.Refusal.Kubelet
		}
		return ev(checks.Skipf("the kubelet stops before it reads the %s in %s (`%s`): subid.kubelet says why", checks.Count(n, "pod record"), p.Dir, why))
	}
	for _, v := range remap.CheckKubeletRange(x.Range, x.MaxPods, x.Unit) {
		if v.Kubelet != "" {
			return ev(checks.Skipf("the kubelet stops before it reads the %s in %s (`%s`): subid.kubelet says why", checks.Count(n, "pod record"), p.Dir, v.Kubelet))
		}
	}
	rangeDesc := fmt.Sprintf("%d-%d, blocks of %d (%s)", x.Range.Start, x.Range.Start+x.Range.Count/x.Unit*x.Unit-1, x.Unit, x.UnitWhy)
	if x.Default {
		rangeDesc = "the default range " + rangeDesc
	}
	vs := remap.CheckPodRecords(p.Records, x.Range, x.Unit)
	if len(vs) > 0 {
		namesPod := env.KubeAtLeast(rules.KubeletPodRecordNamesPod.Value)
		var bad, paths []string
		var oldLength uint64
		for _, v := range vs {
			bad = append(bad, fmt.Sprintf("pod %s: %s (`%s`)", v.Pod, v.Reason, v.Kubelet))
			paths = append(paths, v.Path)
			if strings.HasPrefix(v.Kubelet, "wrong user namespace length") && oldLength == 0 {
				oldLength = v.Mapping.Count
			}
		}
		sort.Strings(paths)
		fix := "put back the kubelet range and idsPerPod the pods were started under, drain the node (`kubectl drain NODE --ignore-daemonsets`), then make the change; on a node already drained, delete the leftover records: `rm -f " + strings.Join(paths, " ") + "`, then restart the kubelet"
		if oldLength != 0 {
			fix = fmt.Sprintf("set userNamespaces.idsPerPod back to %d (the pods' records) in %s until the node is drained (`kubectl drain NODE --ignore-daemonsets`), or, on a node already drained, delete the leftover records: `rm -f %s`, then restart the kubelet", oldLength, k.IDsPerPodFrom, strings.Join(paths, " "))
		}
		return ev(checks.Failf(fix,
			"the kubelet does not start (`%s`): %d of %s in %s break the range it will use, %s: %s",
			remap.PodRecordError(vs[0], namesPod), len(vs), checks.Count(n, "pod record"), p.Dir, rangeDesc, list(bad, 5)))
	}
	// Records the kubelet takes back but the kernel never maps: the block
	// ending at 2^32 (chosen at random, kept on every retry).
	var stuck []string
	for _, r := range p.Records {
		if m, ok := remap.PodMapping(r.Data); ok && m.End() > rules.KernelMapEndID {
			stuck = append(stuck, fmt.Sprintf("pod %s (%s: host ids %d-%d)", r.Pod, r.Path, m.Start, m.End()-1))
		}
	}
	if len(stuck) > 0 {
		var uids []string
		for _, r := range p.Records {
			if m, ok := remap.PodMapping(r.Data); ok && m.End() > rules.KernelMapEndID {
				uids = append(uids, r.Pod)
			}
		}
		return ev(checks.Failf(fmt.Sprintf("delete those pods (find them with `kubectl get pods -A -o custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,UID:.metadata.uid | grep -E '%s'`; a new pod gets another block), and give the kubelet a range ending at or below 2^32 − idsPerPod: `usernsctl apply --target kubernetes`", strings.Join(uids, "|")),
			"the top block of %s ends at 2^32, and the kernel refuses to write a uid_map extent that ends past %s, so a pod holding it never starts; %s on it: %s",
			rangeDesc, rules.KernelMapEnd, checks.Count(len(stuck), "pod record"), list(stuck, 5)))
	}
	return ev(checks.Passf("%s in %s fit the range the kubelet will use, %s: it takes them back at start", checks.Count(n, "pod record"), p.Dir, rangeDesc))
}

// list joins the first n items with "; " and says how many more there are.
func list(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:n], "; "), len(items)-n)
}
