// Package kernel holds the kernel.* checks: the running kernel's build
// config, its release against each target's needs, and RHEL/CentOS 7's
// boot switch.
package kernel

import (
	"context"
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/kconfig"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// Checkers returns the kernel.* checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "kernel.config.user_ns", Title: "kernel built with user namespaces",
			Doc: "The running kernel's config (found like the Kubernetes system-validators) has CONFIG_USER_NS=y; no config found is a warning, the live probes decide.",
		}, checkUserNSConfig),
		checks.New(checks.Info{
			ID: "kernel.config.namespaces", Title: "kernel built with the container namespaces",
			Doc: "CONFIG_NAMESPACES, UTS_NS, IPC_NS, PID_NS and NET_NS are built in (=m is reported as a module that must be loaded).",
		}, checkNamespacesConfig),
		checks.New(checks.Info{
			ID: "kernel.version", Title: "kernel release for the target",
			Doc: "The kernel release meets the target's minimum: idmapped mounts 5.12, overlayfs on idmapped layers 5.19 (containerd 2.x), tmpfs idmap 6.3 (Kubernetes ≥1.27).",
		}, checkVersion),
		checks.New(checks.Info{
			ID: "kernel.el7_userns", Title: "RHEL/CentOS 7 user namespace switch",
			Doc: "On RHEL/CentOS 7 kernels: before 7.4 user namespaces need user_namespace.enable=1 on /proc/cmdline; mounts in user namespaces are complete from 7.6.",
		}, checkEL7),
	}
}

// configOrWarn returns the kernel config, or the warning that stands in
// for a config check when there is none to read.
func configOrWarn(env *checks.Env) (*kconfig.Config, *checks.Result) {
	kc := facts.KernelConfigOf(env)
	rel := checks.KernelRelease(env)
	if rel == "" {
		rel = "(unknown release)"
	}
	var r checks.Result
	switch {
	case kc.Path == "":
		r = checks.Warnf("nothing to fix if the live user namespace probe passes; to let usernsctl read the config, run `modprobe configs` (it provides /proc/config.gz) or install the config file of kernel "+rel,
			"no kernel config found for %s; searched %s", rel, strings.Join(kc.Searched, ", ")).
			With("searched", kc.Searched)
	case kc.Err != nil:
		r = checks.Warnf(fmt.Sprintf("make %s the config of the running kernel %s (or remove it so the next candidate is used); the live probes decide meanwhile", kc.Path, rel),
			"kernel config %s could not be read: %v", kc.Path, kc.Err).
			With("path", kc.Path).With("error", kc.Err.Error())
	default:
		return kc.Config, nil
	}
	return nil, &r
}

func checkUserNSConfig(_ context.Context, env *checks.Env) checks.Result {
	cfg, warn := configOrWarn(env)
	if warn != nil {
		return *warn
	}
	o := cfg.Lookup("USER_NS")
	r := func(res checks.Result) checks.Result {
		return res.With("path", cfg.File).With("CONFIG_USER_NS", o.Value).With("line", o.Line)
	}
	const rebuild = "boot a kernel built with CONFIG_USER_NS=y (every major distribution's stock kernel has it)"
	switch o.State {
	case kconfig.BuiltIn:
		return r(checks.Passf("CONFIG_USER_NS=y (%s)", cfg.Where(o)))
	case kconfig.Module:
		return r(checks.Failf("check that "+cfg.File+" belongs to the running kernel (`uname -r`); "+rebuild,
			"CONFIG_USER_NS=m (%s): user namespaces cannot be built as a module (USER_NS is a bool option), so this file is damaged or not this kernel's config", cfg.Where(o)))
	case kconfig.NotSet:
		return r(checks.Failf(rebuild, "CONFIG_USER_NS is not set (%s): this kernel was built without user namespaces", cfg.Where(o)))
	case kconfig.Absent:
		return r(checks.Failf(rebuild, "%s does not mention CONFIG_USER_NS: this kernel was built without user namespaces", cfg.File))
	}
	return r(checks.Failf(rebuild, "CONFIG_USER_NS=%q (%s) is not a valid setting: want y", o.Value, cfg.Where(o)))
}

// namespaceOptions are what any container needs besides USER_NS.
var namespaceOptions = []string{"NAMESPACES", "UTS_NS", "IPC_NS", "PID_NS", "NET_NS"}

func checkNamespacesConfig(_ context.Context, env *checks.Env) checks.Result {
	cfg, warn := configOrWarn(env)
	if warn != nil {
		return *warn
	}
	seen := map[string]string{}
	var missing, modules []string
	for _, name := range namespaceOptions {
		o := cfg.Lookup(name)
		seen["CONFIG_"+name] = o.State.String()
		switch o.State {
		case kconfig.BuiltIn:
		case kconfig.Module:
			modules = append(modules, fmt.Sprintf("CONFIG_%s=m (line %d)", name, o.Line))
		case kconfig.Absent:
			missing = append(missing, "CONFIG_"+name+" (absent)")
		case kconfig.NotSet:
			missing = append(missing, fmt.Sprintf("CONFIG_%s is not set (line %d)", name, o.Line))
		default:
			missing = append(missing, fmt.Sprintf("CONFIG_%s=%q (line %d)", name, o.Value, o.Line))
		}
	}
	var r checks.Result
	switch {
	case len(missing) > 0:
		r = checks.Failf("boot a kernel built with "+strings.Join(prefixed(namespaceOptions), "=y, ")+"=y",
			"%s: %s: containers cannot get their own namespaces", cfg.File, strings.Join(missing, ", "))
	case len(modules) > 0:
		r = checks.Warnf("make sure the module is loaded before the container runtime starts (or boot a kernel with them built in)",
			"%s: %s: built as a module, which must be loaded for containers to start", cfg.File, strings.Join(modules, ", "))
	default:
		r = checks.Passf("%s: %s all =y", cfg.File, strings.Join(prefixed(namespaceOptions), ", "))
	}
	return r.With("path", cfg.File).With("options", seen)
}

func prefixed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "CONFIG_" + n
	}
	return out
}

// Kernel minimums (requirements.md).
const (
	idmapKernel        = "5.12" // mount_setattr(2), idmapped mounts
	overlayIdmapKernel = "5.19" // overlayfs on idmapped lower layers
	tmpfsIdmapKernel   = "6.3"  // tmpfs idmap: Kubernetes secrets, configmaps, emptyDir
)

const slowChownCost = "containerd 2.x then refuses user-namespaced containers unless `slow_chown = true` is set for the overlayfs snapshotter, which copies and chowns every image for each container (disk space and start-up time)"

func checkVersion(ctx context.Context, env *checks.Env) checks.Result {
	rel := checks.KernelRelease(env)
	if rel == "" {
		return checks.Warnf("check that /proc is mounted; `uname -r` shows the release",
			"could not read the kernel release from /proc/sys/kernel/osrelease")
	}
	v, err := versions.Kernel(rel)
	if err != nil {
		return checks.Warnf("check /proc/sys/kernel/osrelease; `uname -r` shows the release",
			"kernel release %q from /proc/sys/kernel/osrelease is not a version: %v", rel, err).With("release", rel)
	}
	r := func(res checks.Result, min string) checks.Result {
		res = res.With("release", rel)
		if min != "" {
			res = res.With("minimum", min)
		}
		return res
	}
	upgrade := func(min string) string {
		return fmt.Sprintf("upgrade the kernel to %s or later and reboot", min)
	}
	switch env.Target {
	case checks.Docker, checks.Rootless:
		return r(checks.Passf("kernel %s: %s needs no kernel feature beyond user namespaces (kernel.config.user_ns and the live probes check those)", rel, env.Target), "")
	case checks.Kubernetes:
		kube := "Kubernetes (version unknown, so ≥1.27 rules)"
		if env.Kube != nil {
			kube = fmt.Sprintf("Kubernetes %s", env.Kube)
		}
		if env.Kube == nil || env.KubeAtLeast("1.27") {
			if !v.AtLeast(tmpfsIdmapKernel) {
				return r(checks.Failf(upgrade(tmpfsIdmapKernel),
					"kernel %s is older than %s: tmpfs has no idmapped mounts, so with %s pods with hostUsers: false that mount a secret, configmap or emptyDir fail to start (the kubelet only logs a warning)",
					rel, tmpfsIdmapKernel, kube), tmpfsIdmapKernel)
			}
			return r(checks.Passf("kernel %s ≥ %s: idmapped mounts on tmpfs and overlayfs, as %s needs", rel, tmpfsIdmapKernel, kube), tmpfsIdmapKernel)
		}
		if !v.AtLeast(overlayIdmapKernel) {
			return r(checks.Warnf(upgrade(overlayIdmapKernel),
				"kernel %s is older than %s: %s runs stateless user-namespaced pods, but without overlayfs on idmapped layers the runtime chowns each image per pod (disk space and start-up time)",
				rel, overlayIdmapKernel, kube), overlayIdmapKernel)
		}
		return r(checks.Passf("kernel %s ≥ %s: idmapped mounts and overlayfs on idmapped layers for %s", rel, overlayIdmapKernel, kube), overlayIdmapKernel)
	}
	// containerd.
	if p := facts.VersionOf(ctx, env, versions.Containerd); p.Known() && !p.Version.AtLeast("2.0") {
		return r(checks.Passf("kernel %s: containerd %s chowns image layers for user-namespaced containers whatever the kernel (idmapped snapshots need containerd 2.x and kernel %s)", rel, p.Version, overlayIdmapKernel), "")
	}
	switch {
	case !v.AtLeast(idmapKernel):
		return r(checks.Warnf(upgrade(overlayIdmapKernel)+"; or accept the cost and set `slow_chown = true` under [plugins.\"io.containerd.snapshotter.v1.overlayfs\"]",
			"kernel %s is older than %s: no idmapped mounts at all; %s", rel, idmapKernel, slowChownCost), overlayIdmapKernel)
	case !v.AtLeast(overlayIdmapKernel):
		return r(checks.Warnf(upgrade(overlayIdmapKernel)+"; or accept the cost and set `slow_chown = true` under [plugins.\"io.containerd.snapshotter.v1.overlayfs\"]",
			"kernel %s has idmapped mounts (%s) but not overlayfs on idmapped layers (%s); %s", rel, idmapKernel, overlayIdmapKernel, slowChownCost), overlayIdmapKernel)
	}
	return r(checks.Passf("kernel %s ≥ %s: idmapped mounts and overlayfs on idmapped layers, so containerd 2.x needs no slow_chown", rel, overlayIdmapKernel), overlayIdmapKernel)
}

func checkEL7(_ context.Context, env *checks.Env) checks.Result {
	rel := checks.KernelRelease(env)
	build, el7, err := versions.EL7Build(rel)
	if !el7 {
		return checks.Skipf("kernel %q is not a RHEL/CentOS 7 kernel", rel).With("release", rel)
	}
	if err != nil {
		return checks.Warnf("check /proc/sys/kernel/osrelease", "RHEL/CentOS 7 kernel %s: the build number is not a number: %v", rel, err).With("release", rel)
	}
	b, cmdErr := env.Host.ReadFile("/proc/cmdline")
	cmdline := strings.TrimSpace(string(b))
	r := func(res checks.Result) checks.Result {
		res = res.With("release", rel).With("build", build)
		if cmdErr == nil {
			res = res.With("cmdline", cmdline)
		}
		return res
	}
	const update = "yum update kernel (7.6 or later: 3.10.0-957 or newer), then reboot"
	mounts := fmt.Sprintf("mounts inside user namespaces are only fully supported from 7.6 (3.10.0-%d)", versions.EL7Build76)
	if build >= versions.EL7Build74 {
		const sysctlNote = "from 7.4 user.max_user_namespaces defaults to 0 (see sysctl.max_user_namespaces)"
		if build < versions.EL7Build76 {
			return r(checks.Warnf(update, "RHEL/CentOS 7 kernel %s (7.4–7.5): user namespaces are available, but %s; %s", rel, mounts, sysctlNote))
		}
		return r(checks.Passf("RHEL/CentOS 7 kernel %s (7.6 or later): user namespaces and mounts inside them are supported; %s", rel, sysctlNote))
	}
	if cmdErr != nil {
		return r(checks.Warnf("run `cat /proc/cmdline` and look for user_namespace.enable=1",
			"RHEL/CentOS 7 kernel %s is older than 7.4, where user namespaces need user_namespace.enable=1 on the kernel command line, but /proc/cmdline could not be read: %v", rel, cmdErr))
	}
	param := cmdlineParam(cmdline, "user_namespace.enable")
	if paramOn(param) {
		return r(checks.Warnf(update, "RHEL/CentOS 7 kernel %s (before 7.4): /proc/cmdline has %s, so user namespaces are on; %s", rel, param, mounts))
	}
	args := "user_namespace.enable=1"
	if env.Target == checks.Rootless {
		args += " namespace.unpriv_enable=1" // unprivileged users too, before 7.4
	}
	seen := "does not have it"
	if param != "" {
		seen = "has " + param
	}
	return r(checks.Failf(fmt.Sprintf("grubby --update-kernel=ALL --args=%q, then reboot", args),
		"RHEL/CentOS 7 kernel %s (before 7.4) keeps user namespaces off unless booted with user_namespace.enable=1, and /proc/cmdline %s (runc: \"USER namespaces aren't enabled in the kernel\")", rel, seen))
}

// cmdlineParam returns the last occurrence of a kernel parameter as
// written ("name=value" or a bare "name"), "" when absent: the kernel
// applies parameters in order.
func cmdlineParam(cmdline, name string) string {
	last := ""
	for _, f := range strings.Fields(cmdline) {
		if k, _, _ := strings.Cut(f, "="); k == name {
			last = f
		}
	}
	return last
}

// paramOn reads a bool parameter the way the kernel does: a bare name
// means true.
func paramOn(param string) bool {
	if param == "" {
		return false
	}
	_, v, has := strings.Cut(param, "=")
	return !has || kernelBool(v)
}

// kernelBool is the kernel's reading of a bool module parameter.
func kernelBool(s string) bool {
	switch strings.ToLower(s) {
	case "1", "y", "yes", "on", "true":
		return true
	}
	return false
}
