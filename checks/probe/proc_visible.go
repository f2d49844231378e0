package probe

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/mounttable"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// ProcVisibleChecker is probe.proc_visible.
func ProcVisibleChecker() checks.Checker {
	return checks.New(checks.Info{
		ID: "probe.proc_visible", Title: "proc and sysfs fully visible to the runtime",
		Doc:     "In the mount namespace the runtime starts containers from (the running containerd's /proc/PID/mountinfo, else dockerd's, else usernsctl's own), some proc mount and some sysfs mount have nothing mounted over a path inside them but permanently empty directories: else the kernel refuses a fresh proc (sysfs) in a container's user namespace (fs/namespace.c mnt_already_visible), and every user-namespaced container fails with `error mounting \"proc\" to rootfs at \"/proc\": … operation not permitted`.",
		Targets: []checks.Target{checks.Docker, checks.Containerd, checks.Kubernetes},
	}, checkProcVisible)
}

// emptyDirs are the permanently empty directories of proc and sysfs (made
// with proc_create_mount_point / sysfs_create_mount_point): a mount on
// one of them does not hide anything, so the kernel lets it pass.
var emptyDirs = map[string][]string{
	"proc":  {"sys/fs/binfmt_misc", "fs/nfsd"},
	"sysfs": {"fs/cgroup", "fs/fuse/connections", "fs/pstore", "fs/bpf", "fs/selinux", "fs/resctrl", "kernel/debug", "kernel/tracing", "kernel/security", "kernel/config", "firmware/efi/efivars"},
}

// visibility is what one filesystem type's mounts look like.
type visibility struct {
	fstype  string
	mounts  int
	visible bool
	// hidden are the covering mounts of the first mount not visible.
	hidden []string
	at     string
	ro     bool
}

func checkProcVisible(_ context.Context, env *checks.Env) checks.Result {
	src, who := facts.MountinfoPath, "usernsctl's own mount namespace (no container runtime runs)"
	for _, name := range []string{versions.Containerd, versions.Dockerd} {
		if env.Target != checks.Docker && name == versions.Dockerd {
			continue
		}
		if d := facts.DaemonOf(env, name); d.Running() {
			p := fmt.Sprintf("/proc/%d/mountinfo", d.PID)
			if env.Host.Exists(p) { // else gone since the scan
				src, who = p, fmt.Sprintf("%s's mount namespace (pid %d)", name, d.PID)
				break
			}
		}
	}
	b, err := env.Host.ReadFile(src)
	if err != nil {
		if !env.Host.Live() {
			return checks.Skipf("the mount table %s is %s (%v): a snapshot taken by this usernsctl records it", src, probe.NotRecorded, err)
		}
		return checks.Skipf("the mount table %s cannot be read: %v", src, err)
	}
	ms, err := mounttable.Parse(bytes.NewReader(b), src)
	if err != nil {
		return checks.Warnf("run `cat "+src+"` by hand and look for mounts on paths inside /proc and /sys", "%v", err)
	}
	var bad []visibility
	var good []string
	ev := map[string]any{"mountinfo": src}
	for _, fstype := range []string{"proc", "sysfs"} {
		v := judgeVisible(ms, fstype)
		ev[fstype] = map[string]any{"mounts": v.mounts, "visible": v.visible, "covered": v.hidden}
		switch {
		case v.mounts == 0:
			// No such mount to copy from: the kernel has nothing to compare
			// with and refuses too, but a mount table without /proc is not
			// a runtime's.
		case v.visible:
			good = append(good, fmt.Sprintf("a %s mount is fully visible", fstype))
		default:
			bad = append(bad, v)
		}
	}
	r := checks.Result{Evidence: ev}
	if len(bad) == 0 {
		out := checks.Passf("%s in %s (%s): the kernel lets containers in a user namespace mount their own", strings.Join(good, " and "), who, src)
		out.Evidence = ev
		return out
	}
	var parts []string
	for _, v := range bad {
		what := fmt.Sprintf("%s at %s has %s mounted over paths inside it", v.fstype, v.at, strings.Join(v.hidden, ", "))
		if len(v.hidden) == 0 && v.ro {
			what = fmt.Sprintf("%s at %s is read-only, which locks a read-only view", v.fstype, v.at)
		}
		parts = append(parts, what)
	}
	msg := fmt.Sprintf("in %s (%s) %s: no %s mount is fully visible, so the kernel refuses a fresh one in a container's user namespace, and every user-namespaced container fails (runc: `error mounting %q to rootfs at %q: … operation not permitted`)",
		who, src, strings.Join(parts, "; "), bad[0].fstype, bad[0].fstype, "/"+map[string]string{"proc": "proc", "sysfs": "sys"}[bad[0].fstype])
	msg += "; containers without a user namespace are not affected"
	out := checks.Failf("remove those mounts from the runtime's mount namespace: LXCFS's files over /proc (its container profile), a read-only /proc/sys or /proc/sys/* bind from ProtectKernelTunables=/ProtectKernelLogs= or ReadOnlyPaths= in the runtime's unit, files bound over /proc/sys/* to fake sysctls, the masked /proc paths of the container the node runs in (run it privileged or with an unmasked /proc); then restart the runtime", "%s", msg)
	out.Evidence = r.Evidence
	return out
}

// judgeVisible is fs/namespace.c mnt_already_visible for one type: some
// mount of the filesystem's root, not read-only, whose child mounts all
// sit on permanently empty directories.
func judgeVisible(ms []*mountinfo.Info, fstype string) visibility {
	v := visibility{fstype: fstype}
	children := map[int][]*mountinfo.Info{}
	for _, m := range ms {
		if m.Parent != m.ID {
			children[m.Parent] = append(children[m.Parent], m)
		}
	}
	for _, m := range ms {
		if m.FSType != fstype || m.Root != "/" {
			continue
		}
		v.mounts++
		ro := hasOpt(m.Options, "ro") || hasOpt(m.VFSOptions, "ro")
		var hidden []string
		for _, c := range children[m.ID] {
			rel := strings.TrimPrefix(strings.TrimPrefix(c.Mountpoint, m.Mountpoint), "/")
			if rel == "" || !isEmptyDir(fstype, rel) {
				hidden = append(hidden, c.Mountpoint)
			}
		}
		// A read-only proc cannot stand in for the read-write one runc
		// mounts; sysfs is mounted read-only anyway.
		if len(hidden) == 0 && !(ro && fstype == "proc") {
			v.visible = true
			return v
		}
		if v.at == "" {
			sort.Strings(hidden)
			v.at, v.hidden, v.ro = m.Mountpoint, hidden, ro
		}
	}
	return v
}

func isEmptyDir(fstype, rel string) bool {
	for _, d := range emptyDirs[fstype] {
		if path.Clean(rel) == d {
			return true
		}
	}
	return false
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}
