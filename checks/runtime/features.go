package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/jsonpos"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
)

// Features is the part of an OCI runtime's `features` output (the
// runtime-spec features document) that decides user-namespace support.
type Features struct {
	OCIVersionMax string            `json:"ociVersionMax"`
	Linux         *LinuxFeatures    `json:"linux"`
	Annotations   map[string]string `json:"annotations"`
}

// LinuxFeatures is features.linux.
type LinuxFeatures struct {
	Namespaces      []string         `json:"namespaces"`
	MountExtensions *MountExtensions `json:"mountExtensions"`
}

// MountExtensions is features.linux.mountExtensions.
type MountExtensions struct {
	IDMap *struct {
		Enabled *bool `json:"enabled"`
	} `json:"idmap"`
}

// maxFeatures bounds the parsed output; real documents are a few KiB.
const maxFeatures = 1 << 20

// ParseFeatures reads a `runc features` / `crun features` document. name
// is used in messages; errors give line and column.
func ParseFeatures(r io.Reader, name string) (*Features, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFeatures+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxFeatures {
		return nil, fmt.Errorf("%s: more than %d bytes: not a features document", name, maxFeatures)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: empty output: want a JSON features document", name)
	}
	var f Features
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		line, col := jsonpos.LineCol(data, jsonpos.Offset(data, err, dec.InputOffset()))
		return nil, errs.Inputf(errs.Pos{File: name, Line: line, Column: col}, "%v", err)
	}
	if f.Linux == nil {
		return nil, fmt.Errorf("%s: no \"linux\" object: not a Linux runtime's features document", name)
	}
	return &f, nil
}

// UserNS is the CRI rule (containerd internal/cri supportsCRIUserns):
// "user" among linux.namespaces.
func (f *Features) UserNS() bool {
	for _, ns := range f.Linux.Namespaces {
		if ns == "user" {
			return true
		}
	}
	return false
}

// IDMap is the CRI rule's other half: linux.mountExtensions.idmap.enabled
// is present and true.
func (f *Features) IDMap() bool {
	m := f.Linux.MountExtensions
	return m != nil && m.IDMap != nil && m.IDMap.Enabled != nil && *m.IDMap.Enabled
}

// FeaturesChecker is runtime.features.
func FeaturesChecker() checks.Checker {
	return checks.New(checks.Info{
		ID: "runtime.features", Title: "OCI runtime features per CRI handler",
		Doc: fmt.Sprintf("For every CRI runtime handler of containerd ≥%s (the default one decides), the features the handler's OCI runtime declares (`BinaryName features`, runc from %s, crun from %s) as containerd reads them: \"user\" in linux.namespaces and linux.mountExtensions.idmap.enabled (runc ≥%s, crun ≥%s); handlers of another runtime_type are not introspected before %s/%s/%s. Without it the kubelet (≥%s) refuses hostUsers: false pods, and containerd refuses their containers at task create.",
			rules.ContainerdIdmap, rules.RuncFeatures, rules.CrunFeatures, rules.RuncIdmap, rules.CrunIdmap,
			rules.ContainerdShimInfoAnyType22, rules.ContainerdShimInfoAnyType23, rules.ContainerdShimInfoAnyType, rules.KubeletHandlerUserns),
		Targets: []checks.Target{checks.Containerd, checks.Kubernetes},
	}, facts.WhereKubeletUses(versions.Containerd, checkFeatures))
}

func checkFeatures(ctx context.Context, env *checks.Env) checks.Result {
	p := facts.VersionOf(ctx, env, versions.Containerd)
	kube := env.Target == checks.Kubernetes
	switch {
	case !p.Installed && kube && facts.VersionOf(ctx, env, versions.Crio).Installed:
		return checks.Skipf("containerd is not installed; CRI-O is the runtime here")
	case !p.Installed:
		return checks.Skipf("containerd is not installed (runtime.containerd reports it)")
	case !p.Known():
		return checks.Skipf("containerd's version is unknown (runtime.containerd reports it)")
	case !p.Version.AtLeast(rules.ContainerdIdmap.Value):
		// 1.x chowns snapshots and never asks the runtime for features.
		return checks.Skipf("containerd %s does not consult the OCI runtime's features (from %s its CRI requires \"user\" and idmap support there); runtime.containerd judges it", p.Version, rules.ContainerdIdmap)
	case kube && !env.KubeAtLeast(rules.KubeletUserNSMin.Value):
		return checks.Skipf("Kubernetes %s has no user-namespaced pods (runtime.kubelet fails it)", env.Kube)
	}
	hs := handlers(ctx, env, p.Version)
	if hs == nil {
		return checks.Skipf("the CRI handlers cannot be read: the containerd config does not load (containerd.config reports it)")
	}
	ev := map[string]any{}
	var whys []string
	for _, hv := range hs {
		e := map[string]any{"default": hv.dflt, "runtime_type": hv.h.Type, "cri_userns": hv.ok, "known": !hv.unknown}
		if hv.oci != nil {
			e["binary"], e["version"], e["features_subcommand"] = hv.oci.bin, hv.oci.prog.Version.Raw, !hv.oci.noCmd && !hv.oci.missing
		}
		ev[hv.h.Name] = e
		whys = append(whys, hv.why)
	}
	r := checks.Result{}.With("handlers", ev).With("default_handler", hs[0].h.Name)
	if !kube {
		out := checks.Passf("%s; only CRI pods need it: `ctr run --uidmap` asks the runtime for no idmapped mounts", strings.Join(whys, "; "))
		out.Evidence = r.Evidence
		return out
	}
	var f checks.Findings
	for _, hv := range hs {
		judgeHandler(&f, env, hv)
		if stale := staleFeatures(env, hv); stale != "" {
			f.Warn(stale, "restart containerd (`systemctl restart containerd`) so that it reads the handlers' features again; the kubelet picks the new status up within seconds")
		}
	}
	return f.Result(r, strings.Join(whys, "; "))
}

// judgeHandler weighs one handler for Kubernetes: the default handler's
// pods cannot start without user namespace support (fail), another
// handler's only those of a RuntimeClass naming it (warn).
func judgeHandler(f *checks.Findings, env *checks.Env, hv handlerVerdict) {
	if hv.ok {
		return
	}
	add, who := f.Fail, "every hostUsers: false pod"
	if !hv.dflt {
		add, who = f.Warn, fmt.Sprintf("hostUsers: false pods of a RuntimeClass with handler %q", hv.h.Name)
	}
	fix := upgradeFix(hv)
	switch {
	case hv.unknown:
		f.Warn(fmt.Sprintf("%s: whether it supports user namespaces cannot be told here", hv.why),
			fmt.Sprintf("look for handler %q in `crictl info` (status.runtimeHandlers[].features.user_namespaces) on the node, or run `%s features` by hand and look for \"user\" in linux.namespaces and linux.mountExtensions.idmap.enabled", hv.h.Name, binOf(hv)))
		return
	case hv.oci != nil && hv.oci.missing:
		add(fmt.Sprintf("%s: no container of the handler can start", hv.why), fmt.Sprintf("install %s, or point the handler's BinaryName at an installed runtime (runc ≥%s or crun ≥%s), then restart containerd", hv.oci.bin, rules.RuncUsernsFixed, rules.CrunIdmap))
		return
	}
	if env.KubeAtLeast(rules.KubeletHandlerUserns.Value) {
		text := "can't set `spec.hostUsers: false`, runtime does not support user namespaces"
		if !hv.dflt {
			text = fmt.Sprintf("can't set `spec.hostUsers: false`, RuntimeClass handler %q does not support user namespaces", hv.h.Name)
		}
		add(fmt.Sprintf("%s: the kubelet (Kubernetes %s) refuses %s before it starts (`%s`)", hv.why, env.Kube, who, text), fix)
		return
	}
	if hv.oci == nil {
		f.Warn(fmt.Sprintf("%s; the kubelet of Kubernetes %s does not check the handler, and what containerd does at task create with that shim is not checked here", hv.why, env.Kube), fix)
		return
	}
	add(fmt.Sprintf("%s: containerd refuses the containers of %s at task create, because its own /etc/hostname, /etc/hosts and /etc/resolv.conf mounts carry the pod's id mappings (`%s`; the pause sandbox starts, the app containers do not)", hv.why, who, hv.oci.taskError()), fix)
}

func binOf(hv handlerVerdict) string {
	if hv.oci != nil {
		return hv.oci.bin
	}
	return hv.h.OCIBinary()
}

func upgradeFix(hv handlerVerdict) string {
	if hv.oci == nil {
		return fmt.Sprintf("give hostUsers: false pods a RuntimeClass whose handler runs the %s shim with runc ≥%s or crun ≥%s (or upgrade containerd to %s, which asks every shim)", cdconfig.RuncShim, rules.RuncUsernsFixed, rules.CrunIdmap, rules.ContainerdShimInfoAnyType)
	}
	what := fmt.Sprintf("runc ≥%s or crun ≥%s", rules.RuncUsernsFixed, rules.CrunIdmap)
	switch hv.oci.kind {
	case versions.Runc:
		what = fmt.Sprintf("runc %s or later", rules.RuncUsernsFixed)
	case versions.Crun:
		what = fmt.Sprintf("crun %s or later", rules.CrunIdmap)
	}
	where := hv.oci.bin
	if hv.h.BinaryName != "" {
		where = fmt.Sprintf("%s (BinaryName of handler %q, %s)", hv.oci.bin, hv.h.Name, hv.h.BinaryFrom)
	}
	return fmt.Sprintf("replace %s with %s, or point the handler's BinaryName at one, then restart containerd (it reads the features only at start)", where, what)
}
