// Package kubelet holds the kubelet area's checks: the kubelet config in
// effect against the Kubernetes version planned for.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/errs"
)

// Checkers returns the kubelet area's checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "kubelet.config", Title: "kubelet config",
			Doc:     "The kubelet config in effect (--config in the unit, else /var/lib/kubelet/config.yaml) parses; its user-namespace feature gate suits the Kubernetes version; userNamespaces.idsPerPod is valid and honoured (1.35+); maxPods is reported.",
			Targets: []checks.Target{checks.Kubernetes},
		}, checkConfig),
	}
}

// Feature gates.
const (
	gateStateless = "UserNamespacesStatelessPodsSupport" // 1.25–1.27
	gateSupport   = "UserNamespacesSupport"              // 1.28+
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
			With("feature_gates", k.FeatureGates)
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
		fs = append(fs, finding{checks.Warn,
			fmt.Sprintf("no kubelet config at %s (%s): defaults assumed (maxPods %d, idsPerPod %d)", k.Path, k.Source, facts.DefaultMaxPods, facts.DefaultIDsPerPod),
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

func gateFindings(env *checks.Env, k *facts.KubeletConfig) []finding {
	kube := env.Kube
	if kube == nil || !env.KubeAtLeast("1.25") {
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
	if !env.KubeAtLeast("1.28") {
		if supportSet {
			out = append(out, unknownGate(gateSupport, "it arrived in 1.28; 1.25–1.27 use "+gateStateless))
		}
		if !stateless {
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s: Kubernetes %s rejects pods with hostUsers: false unless this alpha gate is on", gateState(k, gateStateless, "off by default"), kube),
				fmt.Sprintf("set `featureGates: {%s: true}` in %s and --feature-gates=%s=true on the API server, then restart both", gateStateless, where(k, gateStateless), gateStateless)})
		}
		return out
	}
	if statelessSet {
		out = append(out, unknownGate(gateStateless, "it was renamed "+gateSupport+" in 1.28"))
	}
	switch {
	case !env.KubeAtLeast("1.33"):
		if !support {
			maturity := "alpha"
			if env.KubeAtLeast("1.30") {
				maturity = "beta"
			}
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s: user namespaces are %s and off by default in Kubernetes %s, so pods with hostUsers: false are rejected", gateState(k, gateSupport, "off by default"), maturity, kube),
				fmt.Sprintf("set `featureGates: {%s: true}` in %s and --feature-gates=%s=true on the API server, then restart both (or upgrade to 1.33+, where it is on by default)", gateSupport, where(k, gateSupport), gateSupport)})
		} else {
			out = append(out, finding{checks.Pass, fmt.Sprintf("%s is on (%s); the API server needs it too", gateSupport, k.GateFrom[gateSupport]), ""})
		}
	case !env.KubeAtLeast("1.36"):
		if supportSet && !support {
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s is false (%s): it turns off user namespaces, which Kubernetes %s has on by default; pods with hostUsers: false are rejected", gateSupport, k.GateFrom[gateSupport], kube),
				fmt.Sprintf("remove `%s: false` from %s and restart the kubelet", gateSupport, k.GateFrom[gateSupport])})
		}
	default:
		switch {
		case supportSet && !support:
			out = append(out, finding{checks.Fail,
				fmt.Sprintf("%s is false (%s), but the gate is GA and locked on in Kubernetes %s: the kubelet refuses to start", gateSupport, k.GateFrom[gateSupport], kube),
				fmt.Sprintf("remove %s from %s and restart the kubelet", gateSupport, k.GateFrom[gateSupport])})
		case supportSet:
			out = append(out, finding{checks.Pass, fmt.Sprintf("%s is set (%s) although it is GA and always on in Kubernetes %s; the kubelet warns about it, remove it at leisure", gateSupport, k.GateFrom[gateSupport], kube), ""})
		}
	}
	return out
}

func idsPerPodFindings(env *checks.Env, k *facts.KubeletConfig) []finding {
	if !k.IDsPerPodSet {
		return nil
	}
	v := k.IDsPerPod
	if v < 65536 || v%65536 != 0 || v >= 1<<32 {
		return []finding{{checks.Fail,
			fmt.Sprintf("userNamespaces.idsPerPod %d (%s) must be a multiple of 65536, at least 65536 and below 2^32: the kubelet refuses it", v, k.IDsPerPodFrom),
			fmt.Sprintf("set userNamespaces.idsPerPod to 65536 (the default) or another multiple of 65536 in %s", k.IDsPerPodFrom)}}
	}
	if v != facts.DefaultIDsPerPod && !env.KubeAtLeast("1.35") {
		return []finding{{checks.Warn,
			fmt.Sprintf("userNamespaces.idsPerPod %d (%s) is ignored before Kubernetes 1.35 (planned: %s): every pod gets 65536 IDs", v, k.IDsPerPodFrom, env.Kube),
			fmt.Sprintf("remove userNamespaces.idsPerPod from %s, or plan for Kubernetes 1.35+", k.IDsPerPodFrom)}}
	}
	return nil
}
