package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/PID/status Cap* sets.
const capSysResource = 24

// sandboxOOMScoreAdj is the oom_score_adj the kubelet gives every pod
// sandbox (pkg/kubelet/qos: PodInfraOOMAdj); Guaranteed containers get
// -997, the others higher.
const sandboxOOMScoreAdj = -998

// OOMScoreAdjChecker is runtime.oom_score_adj.
func OOMScoreAdjChecker() checks.Checker {
	return checks.New(checks.Info{
		ID: "runtime.oom_score_adj", Title: "the runtime can set pods' OOM scores",
		Doc:     "The running containerd (found by a /proc scan; else usernsctl's own bounding set, which every daemon started here inherits) has CAP_SYS_RESOURCE, or an oom_score_adj at or below the kubelet's -998, or restrict_oom_score_adj = true: otherwise runc cannot lower the pod sandbox's oom_score_adj and every pod fails with `can't get final child's PID from pipe: EOF`.",
		Targets: []checks.Target{checks.Containerd, checks.Kubernetes},
	}, facts.WhereKubeletUses(versions.Containerd, checkOOMScoreAdj))
}

func checkOOMScoreAdj(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Containerd)
	if !p.Installed {
		return checks.Skipf("containerd is not installed (runtime.containerd reports it)")
	}
	d := facts.DaemonOf(env, versions.Containerd)
	var st facts.ProcStatus
	var who, set string
	running := d.Running()
	if running {
		st = facts.ReadProcStatus(env, d.PID)
		who, set = fmt.Sprintf("containerd (pid %d", d.PID), "CapEff"
		running = st.Err == nil // gone since the scan: judge as not running
	}
	if !running {
		st = facts.ReadProcStatus(env, 0)
		who, set = "usernsctl's own process (containerd is not running: a daemon started from here inherits its bounding set", "CapBnd"
	}
	if st.Err != nil {
		return checks.Skipf("%s cannot be read (%v): a snapshot taken by this usernsctl records it", st.Path, st.Err)
	}
	caps, ok := st.Caps(set)
	if !ok {
		return checks.Warnf("run `grep Cap /proc/$(pidof containerd)/status` by hand and look for bit 24 (CAP_SYS_RESOURCE)",
			"%s has no readable %s line", st.Path, set)
	}
	r := checks.Result{}.With("status", st.Path).With(strings.ToLower(set), st.Fields[set])
	if running {
		r = r.With("pid", d.PID)
	}
	have := fmt.Sprintf("%s; %s %s in %s", who, set, st.Fields[set], st.Path)
	if caps&(1<<capSysResource) != 0 {
		out := checks.Passf("%s) has CAP_SYS_RESOURCE: runc can give pods the kubelet's OOM scores", have)
		out.Evidence = r.Evidence
		return out
	}
	// The kernel lets a process lower its score to its oom_score_adj_min
	// without the capability; the minimum is at most the current score.
	if running {
		if b, err := env.Host.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", d.PID)); err == nil {
			if adj, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				r = r.With("oom_score_adj", adj)
				if adj <= sandboxOOMScoreAdj {
					out := checks.Passf("%s) lacks CAP_SYS_RESOURCE, but its oom_score_adj is %d, at or below the kubelet's %d, so runc may set the pods' scores without it", have, adj, sandboxOOMScoreAdj)
					out.Evidence = r.Evidence
					return out
				}
				have += fmt.Sprintf(", oom_score_adj %d", adj)
			}
		}
	}
	have += ")"
	c := facts.ContainerdConfigOf(ctx, env)
	restrict := false
	var from string
	if c.Err == nil {
		if on, o, err := c.Config.RestrictOOMScoreAdj(); err == nil && on {
			restrict, from = true, o.String()
		}
	}
	plugin := fmt.Sprintf("[plugins.%q]", cdconfig.PluginCRIRuntime)
	if c.Options.Rule == cdconfig.ReplacePlugins {
		plugin = fmt.Sprintf("[plugins.%q]", cdconfig.PluginCRIv2)
	}
	capFix := "run containerd with CAP_SYS_RESOURCE: its unit's CapabilityBoundingSet=/AmbientCapabilities=, or the container or LXC profile the node runs in (`lxc.cap.drop` without sys_resource)"
	switch {
	case restrict:
		out := checks.Warnf(capFix+", then drop restrict_oom_score_adj",
			"%s lacks CAP_SYS_RESOURCE; restrict_oom_score_adj = true (%s) makes containerd clamp every container's oom_score_adj to its own, so pods start but lose the OOM protection the kubelet gives them (the sandbox's %d, Guaranteed -997)", have, from, sandboxOOMScoreAdj)
		out.Evidence = r.Evidence
		return out
	case env.Target != checks.Kubernetes:
		out := checks.Passf("%s lacks CAP_SYS_RESOURCE: `ctr run` asks for no OOM score, but CRI pods would fail (the kubelet gives every sandbox %d)", have, sandboxOOMScoreAdj)
		out.Evidence = r.Evidence
		return out
	}
	out := checks.Failf(fmt.Sprintf("%s; or set `restrict_oom_score_adj = true` under %s, which clamps the pods' OOM scores to containerd's own; then restart containerd", capFix, plugin),
		"%s lacks CAP_SYS_RESOURCE: runc cannot lower the oom_score_adj to the %d the kubelet gives every pod sandbox, and every pod, with or without hostUsers, fails with `runc create failed: unable to start container process: can't get final child's PID from pipe: EOF` (runc --debug: `nsexec: failed to update /proc/self/oom_score_adj: Permission denied`)",
		have, sandboxOOMScoreAdj)
	out.Evidence = r.Evidence
	return out
}
