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
	"github.com/usernsctl/usernsctl/rules"
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
			Doc: fmt.Sprintf("The kernel release meets what the runtime will ask of it (the kubelet itself never checks the kernel): idmapped bind mounts (%s) for containerd 2.x's /etc/hostname, /etc/hosts and /etc/resolv.conf of hostUsers: false pods, idmapped tmpfs (%s) for their volumes from Kubernetes %s; what containerd's overlayfs makes of the release (remap-ids claimed from %s) is containerd.snapshotter's.",
				rules.KernelIdmapMounts, rules.KernelTmpfsIdmap, rules.KubeletUserNSStateful, rules.KernelOverlayIdmap),
		}, checkVersion),
		checks.New(checks.Info{
			ID: "kernel.el7_userns", Title: "RHEL/CentOS 7 user namespace switch",
			Doc: fmt.Sprintf("On RHEL/CentOS 7 kernels: before %s user namespaces need user_namespace.enable=1 on /proc/cmdline; mounts in user namespaces are complete from %s.", rules.KernelEL7UsernsOn, rules.KernelEL7UsernsMounts),
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
	r := func(res checks.Result, min rules.Threshold) checks.Result {
		res = res.With("release", rel)
		if min.Value != "" {
			res = res.With("minimum", min.Value).With("rule", min.Name)
		}
		return res
	}
	upgrade := func(min rules.Threshold) string {
		return fmt.Sprintf("upgrade the kernel to %s or later and reboot", min)
	}
	// What containerd 2.x's overlayfs snapshotter makes of this release:
	// containerd.snapshotter judges it with the snapshots' filesystem.
	overlay := fmt.Sprintf("containerd 2.x's overlayfs snapshotter claims idmapped layers (remap-ids) without probing from %s on", rules.KernelOverlayIdmap)
	if !v.AtLeast(rules.KernelOverlayIdmap.Value) {
		overlay = fmt.Sprintf("below %s containerd 2.x's overlayfs snapshotter claims idmapped layers only if its own probe in $TMPDIR works, else it refuses user-namespaced containers unless slow_chown is set (a copy per container)", rules.KernelOverlayIdmap)
	}
	overlay += "; containerd.snapshotter judges that"
	if p := facts.VersionOf(ctx, env, versions.Containerd); p.Known() && !p.Version.AtLeast(rules.ContainerdIdmap.Value) {
		overlay = fmt.Sprintf("containerd %s chowns image layers whatever the kernel", p.Version)
	}
	switch env.Target {
	case checks.Docker, checks.Rootless:
		return r(checks.Passf("kernel %s: %s needs no kernel feature beyond user namespaces (kernel.config.user_ns and the live probes check those)", rel, env.Target), rules.Threshold{})
	case checks.Containerd:
		return r(checks.Passf("kernel %s: `ctr run --uidmap` chowns a copy of the image and asks for no idmapped mount; %s", rel, overlay), rules.Threshold{})
	}
	kube := "Kubernetes (version unknown)"
	if env.Kube != nil {
		kube = fmt.Sprintf("Kubernetes %s", env.Kube)
	}
	cri := "the OCI runtime"
	if p := facts.VersionOf(ctx, env, versions.Containerd); p.Known() && !p.Version.AtLeast(rules.ContainerdIdmap.Value) {
		// containerd 1.x chowns; runtime.containerd judges it with the
		// kubelet's version.
		if !env.KubeAtLeast(rules.KubeletUserNSStateful.Value) {
			return r(checks.Passf("kernel %s: containerd %s chowns image layers for user-namespaced pods whatever the kernel, and %s asks for no idmapped volume mounts", rel, p.Version, kube), rules.Threshold{})
		}
	}
	const runcEINVAL = "`failed to set MOUNT_ATTR_IDMAP on …: invalid argument (maybe the filesystem used doesn't support idmap mounts on this kernel?)`"
	if (env.Kube == nil || env.KubeAtLeast(rules.KubeletUserNSMin.Value)) && !v.AtLeast(rules.KernelIdmapMounts.Value) {
		return r(checks.Failf(upgrade(rules.KernelIdmapMounts),
			"kernel %s is older than %s: it has no idmapped mounts (mount_setattr), and containerd 2.x bind-mounts every hostUsers: false pod's /etc/hostname, /etc/hosts and /etc/resolv.conf idmapped, so %s fails every such container (the kubelet does not check the kernel)",
			rel, rules.KernelIdmapMounts, cri), rules.KernelIdmapMounts)
	}
	if env.Kube == nil || env.KubeAtLeast(rules.KubeletUserNSStateful.Value) {
		if !v.AtLeast(rules.KernelTmpfsIdmap.Value) {
			return r(checks.Failf(upgrade(rules.KernelTmpfsIdmap),
				"kernel %s is older than %s: tmpfs has no idmapped mounts, and %s gives the mounts of hostUsers: false pods id mappings, including their tmpfs volumes (the service-account token every pod has, secrets, configmaps, emptyDir medium Memory); the kubelet does not check the kernel, and %s fails the container (runc: %s)",
				rel, rules.KernelTmpfsIdmap, kube, cri, runcEINVAL), rules.KernelTmpfsIdmap)
		}
		return r(checks.Passf("kernel %s ≥ %s: idmapped mounts on tmpfs, as the volumes of %s's hostUsers: false pods need; %s", rel, rules.KernelTmpfsIdmap, kube, overlay), rules.KernelTmpfsIdmap)
	}
	return r(checks.Passf("kernel %s ≥ %s: idmapped bind mounts, as containerd 2.x needs for the pods' /etc/hostname, /etc/hosts and /etc/resolv.conf (%s gives volumes no id mappings); %s", rel, rules.KernelIdmapMounts, kube, overlay), rules.KernelIdmapMounts)
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
	on, full := rules.KernelEL7UsernsOn, rules.KernelEL7UsernsMounts
	update := fmt.Sprintf("yum update kernel (%s or later: kernel build %d or newer), then reboot", full, versions.EL7Build76)
	mounts := fmt.Sprintf("mounts inside user namespaces are only fully supported from %s (kernel build %d)", full, versions.EL7Build76)
	if build >= versions.EL7Build74 {
		sysctlNote := fmt.Sprintf("from %s user.max_user_namespaces defaults to 0 (see sysctl.max_user_namespaces)", on)
		if build < versions.EL7Build76 {
			return r(checks.Warnf(update, "RHEL/CentOS 7 kernel %s (%s or later, before %s): user namespaces are available, but %s; %s", rel, on, full, mounts, sysctlNote))
		}
		return r(checks.Passf("RHEL/CentOS 7 kernel %s (%s or later): user namespaces and mounts inside them are supported; %s", rel, full, sysctlNote))
	}
	if cmdErr != nil {
		return r(checks.Warnf("run `cat /proc/cmdline` and look for user_namespace.enable=1",
			"RHEL/CentOS 7 kernel %s is older than %s, where user namespaces need user_namespace.enable=1 on the kernel command line, but /proc/cmdline could not be read: %v", rel, on, cmdErr))
	}
	param := cmdlineParam(cmdline, "user_namespace.enable")
	if paramOn(param) {
		return r(checks.Warnf(update, "RHEL/CentOS 7 kernel %s (before %s): /proc/cmdline has %s, so user namespaces are on; %s", rel, on, param, mounts))
	}
	args := "user_namespace.enable=1"
	if env.Target == checks.Rootless {
		args += " namespace.unpriv_enable=1" // unprivileged users too, before 7.4 (kernel.el7_userns_on)
	}
	seen := "does not have it"
	if param != "" {
		seen = "has " + param
	}
	return r(checks.Failf(fmt.Sprintf("grubby --update-kernel=ALL --args=%q, then reboot", args),
		"RHEL/CentOS 7 kernel %s (before %s) keeps user namespaces off unless booted with user_namespace.enable=1, and /proc/cmdline %s (runc: \"USER namespaces aren't enabled in the kernel\")", rel, on, seen))
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
