// Package kubelet holds the kubelet area's checks: the kubelet config in
// effect against the Kubernetes version planned for, and the pods' user
// namespace records the kubelet takes back at start.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/rules"
)

// Checkers returns the kubelet area's checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "kubelet.config", Title: "kubelet config",
			Doc: "The kubelet config in effect (--config in the unit, else /var/lib/kubelet/config.yaml, with the --config-dir drop-ins walked recursively and the unit's flags over them) parses; its user-namespace feature gates are ones the kubelet of that version starts with (gone gates, ProcMountType's dependency, the locked GA gate) and turn user namespaces on; userNamespaces.idsPerPod is ignored (before " +
				rules.KubeletIDsPerPodValidated.Value + "), valid (" + rules.KubeletIDsPerPodValidated.Value + "+) and honoured (" + rules.KubeletIDsPerPodHonoured.Value + "+); maxPods is reported.",
			Targets: []checks.Target{checks.Kubernetes},
		}, checkConfig),
		checks.New(podMappingsInfo, checkPodMappings),
	}
}

// Feature gates.
const (
	gateStateless    = "UserNamespacesStatelessPodsSupport" // 1.25–1.27
	gateSupport      = "UserNamespacesSupport"              // 1.28+
	gatePSS          = "UserNamespacesPodSecurityStandards" // alpha until 1.34, gone in 1.35
	gateHostNetwork  = "UserNamespacesHostNetworkSupport"   // 1.35+
	gateProcMount    = "ProcMountType"                      // depends on gateSupport from 1.35
	gateNodeDeclared = "NodeDeclaredFeatures"               // gateHostNetwork depends on it in 1.36
)

// finding is one thing wrong or worth saying.
type finding struct {
	status          checks.Status
	message, remedy string
}

func checkConfig(_ context.Context, env *checks.Env) checks.Result {
	k := facts.KubeletConfigOf(env)
	ev := func(r checks.Result) checks.Result {
		r = r.With("path", k.Path).With("source", k.Source).With("exists", k.Exists).
			With("max_pods", k.MaxPods).With("max_pods_from", k.MaxPodsFrom).
			With("ids_per_pod", k.IDsPerPod).With("ids_per_pod_from", k.IDsPerPodFrom).
			With("feature_gates", k.FeatureGates).
			With("runtime_endpoint", k.RuntimeEndpoint).With("runtime_endpoint_from", k.RuntimeEndpointFrom).
			With("root_dir", k.RootDir).With("root_dir_from", k.RootDirFrom)
		if env.Kube != nil {
			r = r.With("kubernetes", env.Kube.String())
		}
		if len(k.DropIns) > 0 {
			r = r.With("drop_ins", k.DropIns)
		}
		if len(k.Notes) > 0 {
			r = r.With("notes", k.Notes)
		}
		return r
	}
	if k.Err != nil {
		return ev(checks.Failf(parseRemedy(k), "%v: the kubelet will not start with it", k.Err))
	}

	var fs []finding
	fs = append(fs, gateFindings(env, k)...)
	fs = append(fs, idsPerPodFindings(env, k)...)
	if !k.Exists {
		msg := fmt.Sprintf("no kubelet config at %s (%s): defaults assumed (maxPods %d, idsPerPod %d)", k.Path, k.Source, facts.DefaultMaxPods, facts.DefaultIDsPerPod)
		if k.ConfigFlag {
			msg += fmt.Sprintf("; the kubelet does not start until it exists (`failed to load kubelet config file, path: %s`): kubeadm writes it at init or join", k.Path)
		}
		fs = append(fs, finding{checks.Warn, msg,
			"run this check after `kubeadm init`/`kubeadm join` has written the config, or point the kubelet at its config file with --config"})
	}

	worst := checks.Pass
	var msgs, remedies []string
	for _, f := range fs {
		if rank(f.status) > rank(worst) {
			worst = f.status
		}
	}
	for _, f := range fs {
		if f.status == checks.Pass || worst == checks.Pass {
			continue
		}
		msgs = append(msgs, f.message)
		if f.remedy != "" {
			remedies = append(remedies, f.remedy)
		}
	}
	summary := fmt.Sprintf("maxPods %d (%s), idsPerPod %d (%s)", k.MaxPods, k.MaxPodsFrom, k.IDsPerPod, k.IDsPerPodFrom)
	if worst != checks.Pass {
		if k.Exists || k.MaxPodsFrom != "default" || k.IDsPerPodSet {
			msgs = append(msgs, summary)
		}
		return ev(checks.Result{Status: worst, Message: strings.Join(msgs, "; "), Remedy: strings.Join(remedies, "; ")})
	}
	var notes []string
	for _, f := range fs {
		notes = append(notes, f.message)
	}
	where := k.Path
	if k.Source != "default" {
		where += " (" + k.Source + ")"
	}
	msg := fmt.Sprintf("%s: %s", where, summary)
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	return ev(checks.Passf("%s", msg))
}

func rank(s checks.Status) int {
	switch s {
	case checks.Fail:
		return 2
	case checks.Warn:
		return 1
	}
	return 0
}

func parseRemedy(k *facts.KubeletConfig) string {
	var se *errs.Input
	if errors.As(k.Err, &se) && se.Line > 0 {
		return fmt.Sprintf("fix %s line %d (format: kubelet.config.k8s.io/v1beta1 KubeletConfiguration), then restart the kubelet", se.File, se.Line)
	}
	if errors.As(k.Err, &se) {
		return fmt.Sprintf("fix %s (format: kubelet.config.k8s.io/v1beta1 KubeletConfiguration), then restart the kubelet", se.File)
	}
	if k.ErrFix != "" {
		return k.ErrFix
	}
	return fmt.Sprintf("fix the setting named above (%s), then restart the kubelet", k.Path)
}

// gateState describes a gate as set (or not) for messages.
func gateState(k *facts.KubeletConfig, gate, unset string) string {
	v, set := k.GateSet(gate)
	if !set {
		return gate + " is not set (" + unset + ")"
	}
	return fmt.Sprintf("%s is %t (%s)", gate, v, k.GateFrom[gate])
}

// where names the place to edit a gate: where it is set, else the config.
func where(k *facts.KubeletConfig, gate string) string {
	if from, ok := k.GateFrom[gate]; ok {
		return from
	}
	return k.Path
}

// kubeletLog is the kubelet's text for a pod with hostUsers: false while
// its gate is off (GetOrCreateUserNamespaceMappings, v1.30–v1.35).
const podRefused = "the feature gate \"UserNamespacesSupport\" is disabled: can't set spec.HostUsers"

// gateOffPods says what happens to pods with hostUsers: false while the
// kubelet's gate is off (G5, G6): the API server decides, and this node
// cannot see it.
func gateOffPods() string {
	return "so the kubelet gives no pod a user namespace: where the API server has the gate on, a pod with hostUsers: false fails to start (`" + podRefused + "`); where it has it off, the API server drops hostUsers and the pod runs in the host user namespace, silently"
}

func gateFindings(env *checks.Env, k *facts.KubeletConfig) []finding {
	kube := env.Kube
	if kube == nil || !env.KubeAtLeast(rules.KubeletUserNSMin.Value) {
		return nil // runtime.kubelet reports a Kubernetes without user namespaces
	}
	var out []finding
	stateless, statelessSet := k.GateSet(gateStateless)
	support, supportSet := k.GateSet(gateSupport)
	unknownGate := func(gate string, why string) finding {
		return finding{checks.Fail,
			fmt.Sprintf("%s (%s) is not a feature gate of Kubernetes %s (%s): the kubelet refuses to start (`unrecognized feature gate: %s`)", gate, k.GateFrom[gate], kube, why, gate),
			fmt.Sprintf("remove %s from %s", gate, k.GateFrom[gate])}
	}
	if !env.KubeAtLeast(rules.KubeletGateRenamed.Value) {
		if supportSet {
			out = append(out, unknownGate(gateSupport, fmt.Sprintf("it arrived in %s; earlier releases use %s", rules.KubeletGateRenamed, gateStateless)))
		}
		if !stateless {
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s: Kubernetes %s rejects pods with hostUsers: false unless this alpha gate is on", gateState(k, gateStateless, "off by default"), kube),
				fmt.Sprintf("set `featureGates: {%s: true}` in %s and --feature-gates=%s=true on the API server, then restart both", gateStateless, where(k, gateStateless), gateStateless)})
		}
		return out
	}
	if statelessSet {
		out = append(out, unknownGate(gateStateless, fmt.Sprintf("it was renamed %s in %s", gateSupport, rules.KubeletGateRenamed)))
	}
	if _, set := k.GateSet(gatePSS); set && env.KubeAtLeast(rules.KubeletPSSGateRemoved.Value) {
		out = append(out, unknownGate(gatePSS, fmt.Sprintf("it was removed in %s", rules.KubeletPSSGateRemoved)))
	}
	hostNet, hostNetSet := k.GateSet(gateHostNetwork)
	if hostNetSet && !env.KubeAtLeast(rules.KubeletGateDependencies.Value) {
		out = append(out, unknownGate(gateHostNetwork, fmt.Sprintf("it arrived in %s", rules.KubeletGateDependencies)))
	}
	switch {
	case !env.KubeAtLeast(rules.KubeletUserNSDefaultOn.Value):
		if !support {
			maturity := "alpha"
			if env.KubeAtLeast(rules.KubeletUserNSBeta.Value) {
				maturity = "beta"
			}
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s: user namespaces are %s and off by default in Kubernetes %s, %s", gateState(k, gateSupport, "off by default"), maturity, kube, gateOffPods()),
				fmt.Sprintf("set `featureGates: {%s: true}` in %s and --feature-gates=%s=true on the API server, then restart both (or upgrade to %s+, where it is on by default)", gateSupport, where(k, gateSupport), gateSupport, rules.KubeletUserNSDefaultOn)})
		} else {
			out = append(out, finding{checks.Pass, fmt.Sprintf("%s is on (%s); the API server needs it too", gateSupport, k.GateFrom[gateSupport]), ""})
		}
	case !env.KubeAtLeast(rules.KubeletUserNSGA.Value):
		if !supportSet || support {
			break
		}
		fix := fmt.Sprintf("remove `%s: false` from %s and restart the kubelet", gateSupport, k.GateFrom[gateSupport])
		procMount, procMountSet := k.GateSet(gateProcMount)
		switch {
		case !env.KubeAtLeast(rules.KubeletGateDependencies.Value):
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s is false (%s): it turns off user namespaces, which Kubernetes %s has on by default, %s", gateSupport, k.GateFrom[gateSupport], kube, gateOffPods()), fix})
		case !procMountSet || procMount:
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s is false (%s), but %s (on by default) depends on it in Kubernetes %s: the kubelet refuses to start (`%s is enabled, but depends on features that are disabled: [%s]`)", gateSupport, k.GateFrom[gateSupport], gateProcMount, kube, gateProcMount, gateSupport), fix})
		default:
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s is false (%s) with %s false (%s): the kubelet starts, %s", gateSupport, k.GateFrom[gateSupport], gateProcMount, k.GateFrom[gateProcMount], gateOffPods()), fix})
		}
		if hostNetSet && hostNet && env.KubeAtLeast(rules.KubeletGateDependencies.Value) {
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s is true (%s) while %s is false: the kubelet refuses to start (`%s is enabled, but depends on features that are disabled: [%s]`)", gateHostNetwork, k.GateFrom[gateHostNetwork], gateSupport, gateHostNetwork, gateSupport),
				fmt.Sprintf("remove %s from %s, or %s", gateHostNetwork, k.GateFrom[gateHostNetwork], fix)})
		}
	default:
		switch {
		case supportSet && !support:
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s is false (%s), but the gate is GA and locked on in Kubernetes %s: the kubelet refuses to start (`cannot set feature gate %s to false, feature is locked to true`)", gateSupport, k.GateFrom[gateSupport], kube, gateSupport),
				fmt.Sprintf("remove %s from %s and restart the kubelet", gateSupport, k.GateFrom[gateSupport])})
		case supportSet:
			out = append(out, finding{checks.Pass, fmt.Sprintf("%s is set (%s) although it is GA and always on in Kubernetes %s; the kubelet warns about it, remove it at leisure", gateSupport, k.GateFrom[gateSupport], kube), ""})
		}
		if ndf, set := k.GateSet(gateNodeDeclared); hostNetSet && hostNet && set && !ndf {
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s is true (%s) while %s is false (%s): the kubelet refuses to start (`%s is enabled, but depends on features that are disabled: [%s]`)", gateHostNetwork, k.GateFrom[gateHostNetwork], gateNodeDeclared, k.GateFrom[gateNodeDeclared], gateHostNetwork, gateNodeDeclared),
				fmt.Sprintf("remove %s from %s, or `%s: false` from %s", gateHostNetwork, k.GateFrom[gateHostNetwork], gateNodeDeclared, k.GateFrom[gateNodeDeclared])})
		}
	}
	return out
}

// idsPerPodFindings: the field is unknown before 1.33 (the kubelet's
// lenient decoding drops it), validated from 1.33 and honoured from 1.35
// (validateKubeletOSConfiguration; NewMainKubelet).
func idsPerPodFindings(env *checks.Env, k *facts.KubeletConfig) []finding {
	if !k.IDsPerPodSet {
		return nil
	}
	v, unit := k.IDsPerPod, int64(rules.KubeletUnitIDs)
	if !env.KubeAtLeast(rules.KubeletIDsPerPodValidated.Value) {
		if v == unit {
			return []finding{{checks.Pass, fmt.Sprintf("userNamespaces.idsPerPod (%s) is unknown to Kubernetes %s, which ignores it and gives every pod %d ids anyway", k.IDsPerPodFrom, env.Kube, unit), ""}}
		}
		return []finding{{checks.Warn,
			fmt.Sprintf("userNamespaces.idsPerPod %d (%s) is not a field of Kubernetes %s: the kubelet ignores it (`Using lenient decoding as strict decoding failed`) and gives every pod %d ids", v, k.IDsPerPodFrom, env.Kube, unit),
			fmt.Sprintf("remove userNamespaces.idsPerPod from %s, or plan for Kubernetes %s+ (validated from %s)", k.IDsPerPodFrom, rules.KubeletIDsPerPodHonoured, rules.KubeletIDsPerPodValidated)}}
	}
	var bad string
	switch {
	case v < unit:
		bad = fmt.Sprintf("must not be less than %d", unit)
	case v%unit != 0:
		bad = fmt.Sprintf("must be a multiple of %d", unit)
	case v > rules.KubeletIDsPerPodMaxN:
		bad = fmt.Sprintf("must not be more than %s", rules.KubeletIDsPerPodMax)
	}
	if bad != "" {
		return []finding{{checks.Fail,
			fmt.Sprintf("userNamespaces.idsPerPod %d (%s) %s: the kubelet refuses to start (`failed to validate kubelet configuration, error: invalid configuration: userNamespaces.idsPerPod %s, path: %s`)", v, k.IDsPerPodFrom, bad, bad, k.Path),
			fmt.Sprintf("set userNamespaces.idsPerPod to %d (the default) or another multiple of %d in %s", unit, unit, k.IDsPerPodFrom)}}
	}
	if v != unit && !env.KubeAtLeast(rules.KubeletIDsPerPodHonoured.Value) {
		return []finding{{checks.Warn,
			fmt.Sprintf("userNamespaces.idsPerPod %d (%s) is ignored before Kubernetes %s (planned: %s): every pod gets %d IDs", v, k.IDsPerPodFrom, rules.KubeletIDsPerPodHonoured, env.Kube, unit),
			fmt.Sprintf("remove userNamespaces.idsPerPod from %s, or plan for Kubernetes %s+", k.IDsPerPodFrom, rules.KubeletIDsPerPodHonoured)}}
	}
	return nil
}
