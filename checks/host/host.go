// Package host holds the host.* checks: what usernsctl itself runs in.
package host

import (
	"context"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/probe"
)

// Checkers returns the host.* checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "host.in_userns", Title: "usernsctl runs in the initial user namespace",
			Doc: "usernsctl is not itself inside a user namespace (a container, kind node or LXD guest): there, maps and probe results describe that namespace, not the host.",
		}, checkInUserNS),
	}
}

func checkInUserNS(ctx context.Context, env *checks.Env) checks.Result {
	r := env.Probes.Probe(ctx, probe.Spec{Kind: probe.SelfUserNS})
	if !r.Ran {
		return checks.ProbeNotRun(r)
	}
	m := r.Detail["uid_map"]
	if !r.OK {
		return checks.ProbeEvidence(checks.Passf("usernsctl runs in the initial user namespace (/proc/self/uid_map: %q)", m), probe.SelfUserNS, r)
	}
	return checks.ProbeEvidence(checks.Warnf("run usernsctl on the host itself (not in a container, kind node or LXD guest) to judge the host; inside, the results describe this namespace only",
		"usernsctl runs inside a user namespace (/proc/self/uid_map: %q): a container, kind node or LXD guest; uid maps, subordinate ranges and probe results are relative to that namespace, not to the host", m),
		probe.SelfUserNS, r)
}
