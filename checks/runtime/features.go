package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/jsonpos"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/internal/versions"
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

// FeaturesChecker is runtime.features. TODO(lead): add it to Checkers().
func FeaturesChecker() checks.Checker {
	return checks.New(checks.Info{
		ID: "runtime.features", Title: "OCI runtime features",
		Doc:     "`runc features` / `crun features` declare what containerd's CRI requires for user-namespaced pods: \"user\" in linux.namespaces and linux.mountExtensions.idmap.enabled (runc ≥1.2, crun ≥1.9).",
		Targets: []checks.Target{checks.Containerd, checks.Kubernetes},
	}, checkFeatures)
}

// runtimeVerdict is what one OCI runtime's features say.
type runtimeVerdict struct {
	name    string
	version string
	ok      bool   // both halves of the CRI rule hold
	unknown bool   // no verdict: the command failed in an unexpected way
	noCmd   bool   // the runtime has no features subcommand
	why     string // the finding, for the message
}

// featuresSince is the first release with a features document that can
// carry mountExtensions.idmap.
var featuresSince = map[string]string{versions.Runc: "1.2", versions.Crun: "1.9"}

func judgeRuntime(ctx context.Context, env *checks.Env, name string) runtimeVerdict {
	p := facts.VersionOf(ctx, env, name)
	v := runtimeVerdict{name: name, version: "(version unknown)"}
	if p.Known() {
		v.version = p.Version.Raw
	}
	label := name + " " + v.version
	line := name + " features"
	out, err := env.Run.Run(ctx, name, "features")
	var rerr *run.Error
	switch {
	case run.IsNotFound(err):
		v.unknown = true
		v.why = fmt.Sprintf("%s: `%s` could not be run (%v)", label, line, err)
		return v
	case errors.As(err, &rerr):
		said := strings.ToLower(string(out.Stderr) + string(out.Stdout))
		older := p.Known() && !p.Version.AtLeast(featuresSince[name])
		if older || strings.Contains(said, "unknown command") || strings.Contains(said, "no help topic") {
			v.noCmd = true
			v.why = fmt.Sprintf("%s has no `features` subcommand (`%s` exited %d), so it cannot declare idmapped-mount support; %s ≥%s can",
				label, line, out.Exit, name, featuresSince[name])
			return v
		}
		v.unknown = true
		v.why = fmt.Sprintf("%s: %v", label, err)
		return v
	case err != nil:
		v.unknown = true
		v.why = fmt.Sprintf("%s: %v", label, err)
		return v
	}
	f, perr := ParseFeatures(bytes.NewReader(out.Stdout), "`"+line+"` output")
	if perr != nil {
		v.unknown = true
		v.why = fmt.Sprintf("%s: %v", label, perr)
		return v
	}
	userns, idmap := f.UserNS(), f.IDMap()
	v.ok = userns && idmap
	switch {
	case v.ok:
		v.why = fmt.Sprintf("%s declares \"user\" in linux.namespaces and linux.mountExtensions.idmap.enabled = true", label)
	case !userns && !idmap:
		v.why = fmt.Sprintf("%s lists no \"user\" namespace and no linux.mountExtensions.idmap", label)
	case !userns:
		v.why = fmt.Sprintf("%s does not list \"user\" in linux.namespaces", label)
	case f.Linux.MountExtensions == nil || f.Linux.MountExtensions.IDMap == nil:
		v.why = fmt.Sprintf("%s lists no linux.mountExtensions.idmap (runc added it in 1.2, crun in 1.9)", label)
	default:
		v.why = fmt.Sprintf("%s declares linux.mountExtensions.idmap.enabled = false", label)
	}
	return v
}

func checkFeatures(ctx context.Context, env *checks.Env) checks.Result {
	// Only containerd 2.x's CRI reads the features document; 1.x chowns
	// snapshots and never asks the runtime for idmapped mounts.
	if p := facts.VersionOf(ctx, env, versions.Containerd); p.Known() && !p.Version.AtLeast("2.0") {
		return checks.Skipf("containerd %s does not consult the OCI runtime's features (from 2.0 its CRI requires \"user\" and idmap support there); runtime.containerd judges it", p.Version)
	}
	var verdicts []runtimeVerdict
	for _, name := range []string{versions.Runc, versions.Crun} {
		if facts.VersionOf(ctx, env, name).Installed {
			verdicts = append(verdicts, judgeRuntime(ctx, env, name))
		}
	}
	if len(verdicts) == 0 {
		return checks.Skipf("neither runc nor crun is installed (runtime.runc reports it)")
	}
	var whys []string
	ev := map[string]any{}
	for _, v := range verdicts {
		whys = append(whys, v.why)
		ev[v.name] = map[string]any{"version": v.version, "cri_userns": v.ok, "features_subcommand": !v.noCmd, "known": !v.unknown}
	}
	msg := strings.Join(whys, "; ")
	with := func(r checks.Result) checks.Result { return r.With("runtimes", ev) }

	// containerd runs runc unless a runtime handler names another binary:
	// runc decides when it is installed, crun otherwise. A failing
	// secondary runtime is worth a warning, not a failure.
	primary := verdicts[0]
	strict := env.Target == checks.Kubernetes && env.KubeAtLeast("1.27")
	upgrade := "upgrade runc to 1.2.1 or later (or crun to 1.9 or later and make it the runtime of the CRI handler), then restart containerd"
	switch {
	case primary.unknown:
		return with(checks.Warnf(fmt.Sprintf("run `%s features` by hand and look for \"user\" in linux.namespaces and linux.mountExtensions.idmap.enabled", primary.name),
			"the OCI runtime's features could not be read: %s", msg))
	case !primary.ok && strict:
		return with(checks.Failf(upgrade,
			"%s: containerd's CRI will not run pods with hostUsers: false on it (Kubernetes %s needs user namespaces and idmapped mounts from the runtime)", msg, env.Kube))
	case primary.noCmd:
		return with(checks.Skipf("%s; %s does not require it (containerd's CRI needs it for pods with hostUsers: false from Kubernetes 1.27)", msg, targetName(env)))
	case !primary.ok:
		return with(checks.Warnf(upgrade, "%s: user-namespaced containers run, but idmapped mounts are not available", msg))
	}
	for _, v := range verdicts[1:] {
		if !v.ok {
			return with(checks.Warnf(fmt.Sprintf("keep %s out of the CRI runtime handlers used for hostUsers: false pods, or upgrade it", v.name),
				"%s; %s is installed too but cannot run user-namespaced pods", msg, v.name))
		}
	}
	return with(checks.Passf("%s", msg))
}

func targetName(env *checks.Env) string {
	if env.Target == checks.Kubernetes && env.Kube != nil {
		return "Kubernetes " + env.Kube.String()
	}
	return string(env.Target)
}
