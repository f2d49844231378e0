// Package probe holds the probe.* checks, which ask the kernel directly:
// creating a user namespace, and idmapped mounts where the runtimes will
// need them. Live probes run only on the live
// host as root; a snapshot replays recorded results; otherwise they skip.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
)

// Checkers returns the probe.* checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "probe.userns", Title: "creating a user namespace works",
			Doc: "A child process is started in a new user namespace with a real uid/gid map, as runtimes do; a failure is explained by its errno (ENOSPC, EINVAL, EPERM).",
		}, checkUserNS),
		checks.New(checks.Info{
			ID: "probe.overlay_idmap", Title: "overlay over an idmapped lower layer",
			Doc:     "On the filesystem holding the snapshotter's data (containerd root, Docker data-root), an overlay mounted over an idmapped lower directory shows the mapped owner, as containerd 2.x needs.",
			Targets: []checks.Target{checks.Containerd, checks.Kubernetes, checks.Docker},
		}, checkOverlayIdmap),
		checks.New(checks.Info{
			ID: "probe.tmpfs_idmap", Title: "idmapped tmpfs",
			Doc:     fmt.Sprintf("A fresh tmpfs can be idmapped: from Kubernetes %s secrets, configmaps and emptyDir volumes (tmpfs) are mounted idmapped.", rules.KubeletUserNSStateful),
			Targets: []checks.Target{checks.Kubernetes},
		}, checkTmpfsIdmap),
		checks.New(checks.Info{
			ID: "probe.kubelet_pods_idmap", Title: "idmapped mounts for pod volumes",
			Doc:     fmt.Sprintf("The filesystem of the kubelet's pods directory (<root-dir>/pods: --root-dir from its unit, default /var/lib/kubelet) and every volume filesystem mounted under it supports idmapped mounts (Kubernetes %s+); NFS, hugetlbfs and FUSE without FUSE_ALLOW_IDMAP do not.", rules.KubeletUserNSStateful),
			Targets: []checks.Target{checks.Kubernetes},
		}, checkKubeletPods),
		ProcVisibleChecker(),
	}
}

// failed describes how a probe failed: "mount_setattr failed with EINVAL
// (mount_setattr(...): invalid argument)".
func failed(r probe.Result) string {
	var b strings.Builder
	if r.Step != "" {
		fmt.Fprintf(&b, "%s failed", r.Step)
	} else {
		b.WriteString("it failed")
	}
	if r.Errno != "" {
		fmt.Fprintf(&b, " with %s", r.Errno)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, " (%s)", r.Error)
	}
	return b.String()
}

// where names the filesystem a probe tested: "ext4 (/dev/vda) at /var/lib,
// the nearest existing directory to the missing /var/lib/containerd".
func where(r probe.Result) string {
	d := r.Detail
	fs := d["fstype"]
	if fs == "" {
		fs = "the filesystem"
	}
	if src := d["source"]; src != "" && src != "none" && src != fs {
		fs += " (" + src + ")"
	}
	switch {
	case d["missing"] == "true":
		return fmt.Sprintf("%s at %s, the nearest existing directory to the missing %s", fs, d["dir"], d["path"])
	case d["dir"] != "" && d["path"] != "" && d["dir"] != path.Clean(d["path"]):
		return fmt.Sprintf("%s at %s (%s resolved)", fs, d["dir"], d["path"])
	case d["dir"] != "":
		return fmt.Sprintf("%s at %s", fs, d["dir"])
	}
	return fs
}

// cleanupNote surfaces a probe that could not tidy up after itself.
func cleanupNote(r probe.Result) string {
	if e := r.Detail["cleanup_error"]; e != "" {
		return "; the probe could not clean up after itself: " + e
	}
	return ""
}

func timedOut(r probe.Result) bool { return r.Errno == "ETIMEDOUT" }

func checkUserNS(ctx context.Context, env *checks.Env) checks.Result {
	r := env.Probes.Probe(ctx, probe.Spec{Kind: probe.UserNS})
	if !r.Ran {
		return checks.ProbeNotRun(r)
	}
	if r.OK {
		return checks.ProbeEvidence(checks.Passf("a child process was started in a new user namespace with uid map %q and gid map %q",
			r.Detail["uid_map"], r.Detail["gid_map"]), probe.UserNS, r)
	}
	msg, remedy := explainUserNS(env, r)
	return checks.ProbeEvidence(checks.Failf(remedy, "creating a user namespace failed: %s: %s", failed(r), msg), probe.UserNS, r)
}

// explainUserNS turns the errno of a failed clone(CLONE_NEWUSER) into the
// cause and the fix.
func explainUserNS(env *checks.Env, r probe.Result) (msg, remedy string) {
	// The same fix as sysctl.max_user_namespaces gives.
	const sysctlFix = "`sysctl -w user.max_user_namespaces=28633 && echo 'user.max_user_namespaces = 28633' > /etc/sysctl.d/99-usernsctl.conf`"
	release := checks.KernelRelease(env)
	switch r.Errno {
	case "ENOSPC":
		live := facts.LiveSysctlOf(env, "user.max_user_namespaces")
		if live.Err == nil && live.Value == "0" {
			return "user.max_user_namespaces is 0 (/proc/sys/user/max_user_namespaces), which blocks everyone, root included (see sysctl.max_user_namespaces for the file that persists it)", sysctlFix
		}
		if live.Err == nil {
			return fmt.Sprintf("the limit of user namespaces is used up (user.max_user_namespaces = %s in /proc/sys/user/max_user_namespaces, or the per-user ucount limit)", live.Value),
				"raise it: " + sysctlFix
		}
		return "user.max_user_namespaces is 0 or used up", sysctlFix
	case "EINVAL":
		if strings.Contains(release, ".el7") {
			grubby := "`grubby --update-kernel=ALL --args=user_namespace.enable=1`"
			// Before 7.4 the kernel has no user.max_user_namespaces: setting it fails.
			if live := facts.LiveSysctlOf(env, "user.max_user_namespaces"); errors.Is(live.Err, fs.ErrNotExist) {
				return fmt.Sprintf("kernel %s (RHEL/CentOS 7) has user namespaces disabled at boot", release), grubby + ", then reboot"
			}
			return fmt.Sprintf("kernel %s (RHEL/CentOS 7) has user namespaces disabled at boot", release),
				grubby + ", set user.max_user_namespaces (" + sysctlFix + "), then reboot"
		}
		return fmt.Sprintf("kernel %s rejects CLONE_NEWUSER: it is built without CONFIG_USER_NS (see kernel.config.user_ns)", orUnknown(release)),
			"boot a kernel built with CONFIG_USER_NS=y (every current distribution kernel is)"
	case "EPERM":
		return "a policy forbids it: " + policyHints(env),
			"run usernsctl on the host as root, not in a container under a seccomp profile; allow user namespace creation in the LSM policy (SELinux `user_namespace { create }`, AppArmor `userns,`); a chroot cannot create user namespaces"
	case "EUSERS":
		return "the nesting limit of 32 user namespaces is reached: usernsctl runs deeply nested", "run usernsctl from the host's initial user namespace"
	case "ETIMEDOUT":
		return "the child did not start in time", "check the machine's load and run the check again"
	}
	return "unexpected error", "run the check again; if it persists, report it with `usernsctl snapshot` of this host"
}

// policyHints lists the policies visible from here that can refuse
// CLONE_NEWUSER to root.
func policyHints(env *checks.Env) string {
	var hints []string
	if b, err := env.Host.ReadFile("/proc/self/status"); err == nil {
		for _, ln := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(ln, "Seccomp:"); ok {
				if v = strings.TrimSpace(v); v != "0" {
					hints = append(hints, fmt.Sprintf("usernsctl runs under seccomp (Seccomp: %s in /proc/self/status), as in a container", v))
				}
			}
		}
	}
	if b, err := env.Host.ReadFile("/sys/kernel/security/lsm"); err == nil {
		if l := strings.TrimSpace(string(b)); l != "" {
			hints = append(hints, fmt.Sprintf("active LSMs: %s (/sys/kernel/security/lsm)", l))
		}
	}
	if len(hints) == 0 {
		return "seccomp, an LSM (SELinux, AppArmor) or a chroot"
	}
	return strings.Join(hints, "; ")
}

func orUnknown(s string) string {
	if s == "" {
		return "(release unknown)"
	}
	return s
}

// snapshotterDir is the directory whose filesystem holds the image layers,
// and where that came from.
func snapshotterDir(ctx context.Context, env *checks.Env) (dir, source string) {
	if env.Target == checks.Docker {
		root, src := facts.DockerDataRootOf(env)
		if src == "default" {
			return root, "Docker's default data-root"
		}
		return root, "Docker's data-root, " + src
	}
	sp := facts.SnapshotterPathOf(ctx, env)
	return sp.Dir, "containerd's snapshots, " + sp.From
}

func checkOverlayIdmap(ctx context.Context, env *checks.Env) checks.Result {
	// CRI-O keeps its layers in containers/storage (graphroot in
	// storage.conf), with its own idmap and chown fallbacks that no rule
	// here covers: probing containerd's root would judge a component the
	// node does not use.
	if why, other := facts.OtherCRI(env, versions.Containerd); other {
		return checks.Skipf("%s: CRI-O's image storage (containers/storage) is not judged by this check", why)
	}
	dir, source := snapshotterDir(ctx, env)
	spec := probe.Spec{Kind: probe.OverlayIdmap, Path: dir}
	r := env.Probes.Probe(ctx, spec)
	if !r.Ran {
		return checks.ProbeNotRun(r)
	}
	ev := func(res checks.Result) checks.Result {
		return checks.ProbeEvidence(res, spec.Key(), r).With("path_source", source)
	}
	if r.OK {
		return ev(checks.Passf("an overlay over an idmapped lower directory shows the mapped owner %s on %s (%s)%s",
			r.Detail["owner"], where(r), source, cleanupNote(r)))
	}
	what := fmt.Sprintf("an overlay over an idmapped lower directory does not work on %s (%s): %s%s",
		where(r), source, failed(r), cleanupNote(r))
	if r.Step == "mount overlay" && r.Errno == "EINVAL" {
		what += fmt.Sprintf("; overlayfs accepts idmapped lower layers from kernel %s (this is %s)", rules.KernelOverlayIdmap, orUnknown(checks.KernelRelease(env)))
	}
	if timedOut(r) {
		return ev(checks.Warnf("check that the filesystem answers (a hung network mount?), then run the check again", "%s", what))
	}
	switch env.Target {
	case checks.Docker:
		return ev(checks.Passf("%s; dockerd's userns-remap does not need it (it chowns image layers for the remapped root), but containerd 2.x or Kubernetes on this filesystem would", what))
	}
	if p := facts.VersionOf(ctx, env, versions.Containerd); p.Known() && !p.Version.AtLeast(rules.ContainerdIdmap.Value) {
		return ev(checks.Passf("%s; containerd %s does not idmap snapshots (it chowns a copy per mapping), so it is not affected until an upgrade to %s", what, p.Version, rules.ContainerdIdmap))
	}
	const moveRoot = "put containerd's root (or the overlayfs snapshotter's root_path) on a filesystem with idmapped-mount support (ext4, xfs, btrfs; not NFS or FUSE)"
	// containerd decides on remap-ids from the kernel release or its own
	// $TMPDIR probe, not from this filesystem: where it claims them it
	// idmaps layers here, and slow_chown is never consulted (R12).
	if o := facts.OverlayfsOf(ctx, env); o.Known && o.Claimed {
		return ev(checks.Warnf(moveRoot,
			"%s; containerd 2.x claims remap-ids (%s), so it idmaps the layers here and user-namespaced containers fail to mount their rootfs; slow_chown does not help, since containerd does not consult it once it claims remap-ids; containerd.snapshotter decides", what, o.ClaimedWhy))
	}
	// The fallback is already configured: the remedy below would be a no-op.
	if c := facts.ContainerdConfigOf(ctx, env); c.Config != nil {
		if slow, from, err := c.Config.SlowChown(); err == nil && slow {
			return ev(checks.Passf("%s; slow_chown = true (%s) makes containerd 2.x chown a copy of every image per mapping instead (disk space and start-up time); containerd.snapshotter decides", what, from))
		}
	}
	return ev(checks.Warnf(moveRoot+", or set `slow_chown = true` for the overlayfs snapshotter (`usernsctl apply --target containerd --slow-chown on`)",
		"%s; containerd 2.x claims no remap-ids here, so its overlayfs snapshotter refuses user-namespaced containers unless slow_chown is set, which copies and chowns every image per mapping (disk space and start-up time); containerd.snapshotter decides", what))
}

func checkTmpfsIdmap(ctx context.Context, env *checks.Env) checks.Result {
	r := env.Probes.Probe(ctx, probe.Spec{Kind: probe.TmpfsIdmap})
	if !r.Ran {
		return checks.ProbeNotRun(r)
	}
	ev := func(res checks.Result) checks.Result { return checks.ProbeEvidence(res, probe.TmpfsIdmap, r) }
	if r.OK {
		return ev(checks.Passf("a fresh tmpfs mounted idmapped shows the mapped owner %s%s", r.Detail["owner"], cleanupNote(r)))
	}
	what := fmt.Sprintf("a fresh tmpfs cannot be idmapped: %s%s", failed(r), cleanupNote(r))
	release := orUnknown(checks.KernelRelease(env))
	remedy := fmt.Sprintf("boot a kernel ≥%s (tmpfs supports idmapped mounts from %s; this is %s)", rules.KernelTmpfsIdmap, rules.KernelTmpfsIdmap, release)
	switch {
	case timedOut(r):
		return ev(checks.Warnf("run the check again; if it persists, report it with `usernsctl snapshot` of this host", "%s", what))
	case env.KubeAtLeast(rules.KubeletUserNSStateful.Value):
		return ev(checks.Failf(remedy, "%s; Kubernetes %s mounts secrets, configmaps and emptyDir volumes (tmpfs) idmapped for pods with hostUsers: false, so such pods fail to start", what, env.Kube))
	}
	return ev(checks.Warnf(remedy, "%s; Kubernetes %s does not need it yet, but %s and later do (secrets, configmaps, emptyDir are tmpfs)", what, orUnknown(fmt.Sprint(env.Kube)), rules.KubeletUserNSStateful))
}

// PodsDir is the kubelet's pods directory with the default --root-dir;
// the check probes the one its unit's --root-dir names.
const PodsDir = "/var/lib/kubelet/pods"

// volumeFS is one distinct volume filesystem under the pods directory.
type volumeFS struct {
	key     string // fstype, plus the source for FUSE
	fstype  string
	mounts  []string
	example string // the mountpoint probed
}

// fsKey groups mounts by what decides idmap support: the filesystem type
// (FS_ALLOW_IDMAP is per type), except FUSE, where it is per server
// (FUSE_ALLOW_IDMAP), so each source counts.
func fsKey(fstype, source string) string {
	if fstype == "fuse" || strings.HasPrefix(fstype, "fuse.") || fstype == "fuseblk" {
		return fstype + " " + source
	}
	return fstype
}

func checkKubeletPods(ctx context.Context, env *checks.Env) checks.Result {
	if !env.KubeAtLeast(rules.KubeletUserNSStateful.Value) {
		return checks.Skipf("Kubernetes %s does not mount pod volumes idmapped (%s and later do)", orUnknown(fmt.Sprint(env.Kube)), rules.KubeletUserNSStateful)
	}
	// The kubelet's own pods directory: --root-dir from its unit.
	podsDir := facts.KubeletPodsOf(env).Dir
	podsSpec := probe.Spec{Kind: probe.Idmap, Path: podsDir}
	pods := env.Probes.Probe(ctx, podsSpec)
	if !pods.Ran {
		return checks.ProbeNotRun(pods)
	}

	// Volume filesystems mounted under the pods directory, one probe per
	// distinct filesystem.
	var volumes []*volumeFS
	var mountsNote string
	mounts := facts.MountsOf(env)
	if mounts.Err != nil {
		mountsNote = fmt.Sprintf("; volume mounts were not enumerated: %v", mounts.Err)
	}
	podsKey := ""
	byKey := map[string]*volumeFS{}
	best := -1
	for _, m := range mounts.List {
		if m.Mountpoint == podsDir || strings.HasPrefix(podsDir, strings.TrimSuffix(m.Mountpoint, "/")+"/") {
			if len(m.Mountpoint) > best { // the mount holding the pods directory
				best, podsKey = len(m.Mountpoint), fsKey(m.FSType, m.Source)
			}
			continue
		}
		if !strings.HasPrefix(m.Mountpoint, podsDir+"/") {
			continue
		}
		k := fsKey(m.FSType, m.Source)
		v := byKey[k]
		if v == nil {
			v = &volumeFS{key: k, fstype: m.FSType}
			byKey[k] = v
			volumes = append(volumes, v)
		}
		v.mounts = append(v.mounts, m.Mountpoint)
	}

	type outcome struct {
		label string
		key   string
		r     probe.Result
	}
	outcomes := []outcome{{label: where(pods), key: podsSpec.Key(), r: pods}}
	for _, v := range volumes {
		if v.key == podsKey {
			continue // same filesystem type as the pods directory: probed
		}
		sort.Strings(v.mounts)
		v.example = v.mounts[0]
		s := probe.Spec{Kind: probe.Idmap, Path: v.example}
		r := env.Probes.Probe(ctx, s)
		label := fmt.Sprintf("%s volume at %s", v.fstype, v.example)
		if n := len(v.mounts) - 1; n > 0 {
			label += fmt.Sprintf(" (and %s)", checks.Count(n, "more "+v.fstype+" mount"))
		}
		outcomes = append(outcomes, outcome{label: label, key: s.Key(), r: r})
	}

	var bad, good, skipped []string
	probed := map[string]any{}
	for _, o := range outcomes {
		probed[o.key] = map[string]any{"ran": o.r.Ran, "ok": o.r.OK, "errno": o.r.Errno, "step": o.r.Step, "fstype": o.r.Detail["fstype"]}
		switch {
		case !o.r.Ran:
			skipped = append(skipped, fmt.Sprintf("%s: not probed (%s)", o.label, o.r.Reason))
		case o.r.OK:
			good = append(good, o.label)
		default:
			bad = append(bad, fmt.Sprintf("%s: %s%s", o.label, failed(o.r), cleanupNote(o.r)))
		}
	}
	res := func(r checks.Result) checks.Result {
		return r.With("probes", probed).With("volume_filesystems", len(outcomes)-1).With("pods_dir", podsDir)
	}
	tail := mountsNote
	if len(skipped) > 0 {
		tail += "; " + strings.Join(skipped, "; ")
	}
	if len(bad) > 0 {
		if len(good) > 0 {
			tail += "; they work on " + strings.Join(good, "; ")
		}
		return res(checks.Failf("move these volumes to filesystems with idmapped-mount support, or run the pods that use them with hostUsers: true (NFS and hugetlbfs do not support idmapped mounts; FUSE only when the server sets FUSE_ALLOW_IDMAP)",
			"idmapped mounts fail for %s; pods with hostUsers: false using them will not start (Kubernetes %s)%s", strings.Join(bad, "; "), env.Kube, tail))
	}
	return res(checks.Passf("idmapped mounts work on %s%s", strings.Join(good, "; "), tail))
}
