package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
)

// ociRuntime is one OCI runtime binary a handler runs, as a command line
// names it: "runc" (looked up on PATH, as the shim does on containerd's)
// or an absolute BinaryName.
type ociRuntime struct {
	bin  string
	kind string // versions.Runc, versions.Crun, or "" for another runtime
	prog facts.Program
	// features is the parsed `BIN features`; nil with why set otherwise.
	features *Features
	// missing: the binary is not installed (not on PATH, or not recorded).
	missing bool
	// noCmd: the binary has no features subcommand.
	noCmd bool
	// unknown: the command failed in an unexpected way.
	unknown bool
	why     string
}

// label is "runc 1.2.6" or "/opt/runc-1.1/runc (runc 1.1.15)".
func (o *ociRuntime) label() string {
	v := "version unknown"
	if o.prog.Known() {
		v = o.prog.Version.Raw
	}
	name := o.kind
	if name == "" {
		name = path.Base(o.bin)
	}
	if o.bin == o.kind {
		return name + " " + v
	}
	return fmt.Sprintf("%s (%s %s)", o.bin, name, v)
}

// kindOf names the runtime a binary is by its name, else by what its
// --version prints.
func kindOf(bin string, out []byte) string {
	base := path.Base(bin)
	switch {
	case strings.Contains(base, versions.Crun):
		return versions.Crun
	case strings.Contains(base, versions.Runc):
		return versions.Runc
	}
	if f := strings.Fields(string(out)); len(f) > 1 && f[1] == "version" && (f[0] == versions.Runc || f[0] == versions.Crun) {
		return f[0]
	}
	return ""
}

// ociRuntimeOf reads one binary's version and features, once per run.
func ociRuntimeOf(ctx context.Context, env *checks.Env, bin string) *ociRuntime {
	o, _ := checks.Fact(env, "runtime.oci."+bin, func(env *checks.Env) (*ociRuntime, error) {
		o := &ociRuntime{bin: bin}
		if bin == versions.Runc || bin == versions.Crun {
			o.kind, o.prog = bin, facts.VersionOf(ctx, env, bin)
		} else {
			out, err := env.Run.Run(ctx, bin, "--version")
			o.kind = kindOf(bin, out.Stdout)
			o.prog = facts.Program{Name: bin, Installed: !run.IsNotFound(err)}
			switch {
			case run.IsNotFound(err):
			case err != nil:
				o.prog.Err = err
			case o.kind == "":
				o.prog.Err = fmt.Errorf("%s --version: not runc or crun", bin)
			default:
				v, perr := versions.FromOutput(o.kind, bytes.NewReader(out.Stdout))
				o.prog.Version, o.prog.Err = v, perr
			}
		}
		o.read(ctx, env)
		return o, nil
	})
	return o
}

// featuresSince is the first release with a features subcommand, and
// idmapSince the first whose document declares idmapped mounts.
var (
	featuresSince = map[string]rules.Threshold{versions.Runc: rules.RuncFeatures, versions.Crun: rules.CrunFeatures}
	idmapSince    = map[string]rules.Threshold{versions.Runc: rules.RuncIdmap, versions.Crun: rules.CrunIdmap}
)

func (o *ociRuntime) read(ctx context.Context, env *checks.Env) {
	line := o.bin + " features"
	out, err := env.Run.Run(ctx, o.bin, "features")
	var rerr *run.Error
	switch {
	case run.IsNotFound(err):
		o.missing = true
		o.why = fmt.Sprintf("%s is not installed (`%s` could not be run)", o.bin, line)
		return
	case errors.As(err, &rerr):
		said := strings.ToLower(string(out.Stderr) + string(out.Stdout))
		since, has := featuresSince[o.kind]
		older := has && o.prog.Known() && !o.prog.Version.AtLeast(since.Value)
		if older || strings.Contains(said, "unknown command") || strings.Contains(said, "no help topic") {
			o.noCmd = true
			o.why = fmt.Sprintf("%s has no `features` subcommand (`%s` exited %d), so it declares nothing", o.label(), line, out.Exit)
			if has {
				o.why += fmt.Sprintf(" (%s has it from %s)", o.kind, since)
			}
			return
		}
		o.unknown = true
		o.why = fmt.Sprintf("%s: %v", o.label(), err)
		return
	case err != nil:
		o.unknown = true
		o.why = fmt.Sprintf("%s: %v", o.label(), err)
		return
	}
	f, perr := ParseFeatures(bytes.NewReader(out.Stdout), "`"+line+"` output")
	if perr != nil {
		o.unknown = true
		o.why = fmt.Sprintf("%s: %v", o.label(), perr)
		return
	}
	o.features = f
	userns, idmap := f.UserNS(), f.IDMap()
	switch {
	case userns && idmap:
		o.why = fmt.Sprintf("%s declares \"user\" in linux.namespaces and linux.mountExtensions.idmap.enabled = true", o.label())
	case !userns && !idmap:
		o.why = fmt.Sprintf("%s lists no \"user\" namespace and no linux.mountExtensions.idmap", o.label())
	case !userns:
		o.why = fmt.Sprintf("%s does not list \"user\" in linux.namespaces", o.label())
	case f.Linux.MountExtensions == nil || f.Linux.MountExtensions.IDMap == nil:
		o.why = fmt.Sprintf("%s lists no linux.mountExtensions.idmap", o.label())
		if t, ok := idmapSince[o.kind]; ok {
			o.why += fmt.Sprintf(" (%s declares it from %s)", o.kind, t)
		}
	default:
		o.why = fmt.Sprintf("%s declares linux.mountExtensions.idmap.enabled = false", o.label())
	}
}

// criUserns is containerd's supportsCRIUserns on this document.
func (o *ociRuntime) criUserns() bool {
	return o.features != nil && o.features.UserNS() && o.features.IDMap()
}

// taskError is what containerd ≥2.0 answers at task create for a
// container with mapped mounts on this runtime (core/runtime/v2
// task_manager.go validateRuntimeFeatures), "" when it accepts it.
func (o *ociRuntime) taskError() string {
	switch {
	case o.missing:
		return fmt.Sprintf("failed to create containerd task: failed to validate OCI runtime features: runtime info: failed to run […-info]: … %s …", o.bin)
	case o.noCmd:
		return "failed to create containerd task: failed to validate OCI runtime features: unmarshal runtime features: type with url : not found"
	case o.features == nil:
		return ""
	}
	m := o.features.Linux.MountExtensions
	switch {
	case m == nil || m.IDMap == nil:
		return "failed to create containerd task: failed to validate OCI runtime features: idmap mounts not supported: missing `mountExtensions.idmap` entry in `features` command"
	case !o.features.IDMap():
		return "failed to create containerd task: failed to validate OCI runtime features: idmap mounts not supported: entry `mountExtensions.idmap.Enabled` in `features` command not present or disabled"
	}
	return ""
}

// handlerVerdict is what containerd's CRI concludes for one handler.
type handlerVerdict struct {
	h    cdconfig.Handler
	dflt bool
	// oci is the runtime the runc shim runs (nil for other shims).
	oci *ociRuntime
	// ok: the CRI reports user namespace support for the handler.
	ok bool
	// unknown: it cannot be told here.
	unknown bool
	why     string
}

// handlers judges every CRI handler of the effective containerd config
// as containerd version v introspects them (internal/cri/server
// service.go introspectRuntimeFeatures); nil when the config does not
// load.
func handlers(ctx context.Context, env *checks.Env, v versions.Parsed) []handlerVerdict {
	cri := facts.CRIOf(ctx, env)
	if cri == nil || cri.Err != nil {
		return nil
	}
	anyShim := facts.AtLeastBackport(v, rules.ContainerdShimInfoAnyType, rules.ContainerdShimInfoAnyType22, rules.ContainerdShimInfoAnyType23)
	var out []handlerVerdict
	for _, h := range cri.Handlers {
		hv := handlerVerdict{h: h, dflt: h.Name == cri.Default.Name}
		switch {
		case h.Type != cdconfig.RuncShim && anyShim:
			hv.unknown = true
			hv.why = fmt.Sprintf("handler %q runs the shim %s (%s): containerd %s asks it for its features, and what that shim answers is not checked here", h.Name, typeName(h), h.TypeFrom, v)
		case h.Type != cdconfig.RuncShim:
			hv.why = fmt.Sprintf("handler %q runs the shim %s (%s), and containerd %s reads features only from %s shims (debug log: `introspecting OCI runtime features needs the runtime type to be %q, got %q`), so it reports no user namespace support for it",
				h.Name, typeName(h), h.TypeFrom, v, cdconfig.RuncShim, cdconfig.RuncShim, h.Type)
		default:
			hv.oci = ociRuntimeOf(ctx, env, h.OCIBinary())
			hv.ok = hv.oci.criUserns()
			hv.unknown = hv.oci.unknown
			from := "no BinaryName: runc on containerd's PATH"
			if h.BinaryName != "" {
				from = "BinaryName " + h.BinaryFrom.String()
			}
			hv.why = fmt.Sprintf("handler %q (%s): %s", h.Name, from, hv.oci.why)
		}
		out = append(out, hv)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].dflt && !out[j].dflt })
	return out
}

func typeName(h cdconfig.Handler) string {
	if h.Type == "" {
		return "(runtime_type not set)"
	}
	return h.Type
}

// usedRuntimes are the OCI runtimes of kind the target's containers run:
// for Kubernetes the CRI handlers' (default first), for the containerd
// target `ctr`'s runc on PATH, for Docker the one on PATH.
func usedRuntimes(ctx context.Context, env *checks.Env, kind string) (used []*ociRuntime, dflt map[string]bool, via map[string][]string, known bool) {
	dflt, via = map[string]bool{}, map[string][]string{}
	_, crio := facts.OtherCRI(env, versions.Containerd)
	if env.Target != checks.Kubernetes || crio || !facts.VersionOf(ctx, env, versions.Containerd).Installed {
		if env.Target == checks.Kubernetes {
			return nil, dflt, via, false // CRI-O or no runtime: not ours to tell
		}
		if kind != versions.Runc {
			return nil, dflt, via, true
		}
		o := ociRuntimeOf(ctx, env, kind)
		dflt[kind] = true
		return []*ociRuntime{o}, dflt, via, true
	}
	v := facts.VersionOf(ctx, env, versions.Containerd).Version
	hs := handlers(ctx, env, v)
	if hs == nil {
		return nil, dflt, via, false
	}
	seen := map[string]bool{}
	for _, hv := range hs {
		if hv.oci == nil || hv.oci.kind != kind {
			continue
		}
		via[hv.oci.bin] = append(via[hv.oci.bin], hv.h.Name)
		if hv.dflt {
			dflt[hv.oci.bin] = true
		}
		if !seen[hv.oci.bin] {
			seen[hv.oci.bin] = true
			used = append(used, hv.oci)
		}
	}
	return used, dflt, via, true
}

// staleFeatures is R3: containerd reads every handler's features once, at
// start; a binary replaced since keeps the old verdict until containerd
// restarts. Live hosts only: a snapshot does not keep file times.
func staleFeatures(env *checks.Env, hv handlerVerdict) string {
	if !env.Host.Live() || hv.oci == nil || !hv.ok {
		return ""
	}
	d := facts.DaemonOf(env, versions.Containerd)
	if !d.Running() {
		return ""
	}
	start, ok := processStart(env, d.PID)
	if !ok {
		return ""
	}
	bin := hv.oci.bin
	if !path.IsAbs(bin) {
		p, err := exec.LookPath(bin)
		if err != nil {
			return ""
		}
		bin = p
	}
	fi, err := env.Host.Stat(bin)
	if err != nil || !fi.ModTime().After(start) {
		return ""
	}
	return fmt.Sprintf("%s changed at %s, after containerd (pid %d) started at %s: containerd read handler %q's features at its start and reports those until it restarts",
		bin, fi.ModTime().UTC().Format(time.RFC3339), d.PID, start.UTC().Format(time.RFC3339), hv.h.Name)
}

// processStart is when pid started: /proc/stat's btime plus field 22 of
// /proc/PID/stat in clock ticks (USER_HZ, 100 on Linux).
func processStart(env *checks.Env, pid int) (time.Time, bool) {
	b, err := env.Host.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	var btime int64
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "btime "); ok {
			btime, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	st, err := env.Host.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || btime == 0 {
		return time.Time{}, false
	}
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / 100), true
}
