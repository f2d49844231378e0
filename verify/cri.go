package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/verify/procfs"
)

// criVerify judges containerd and Kubernetes containers: the processes
// named by --pid or --container, or found by --all.
type criVerify struct {
	env  *checks.Env
	opts Options

	daemons    []procfs.Stat // containerd processes, by a /proc scan
	daemonRef  *reference    // the first one's user namespace
	scanErr    error
	subjects   []*Subject
	named      []*Pod // --pod
	all        bool
	sharedRuns int // --all: container processes in their runtime's namespace
	expect     *Expect
}

func (c *criVerify) id(name string) string { return "verify." + string(c.env.Target) + "." + name }

func (c *criVerify) kube() bool { return c.env.Target == checks.Kubernetes }

func (c *criVerify) prepare(ctx context.Context) {
	env := c.env
	stats := map[int]procfs.Stat{}
	pids, err := procfs.PIDs(env.Host)
	c.scanErr = err
	for _, pid := range pids {
		st, err := procfs.ReadStat(env.Host, pid)
		if err != nil {
			continue // gone since the listing
		}
		stats[pid] = st
		if st.Comm == "containerd" {
			c.daemons = append(c.daemons, st)
		}
	}
	if len(c.daemons) > 0 {
		d := c.daemons[0]
		ino, err := procfs.Namespace(env.Host, d.PID, "user")
		c.daemonRef = &reference{ino: ino, err: err, desc: fmt.Sprintf("containerd (pid %d)", d.PID)}
	}

	for _, pid := range c.opts.PIDs {
		c.subjects = append(c.subjects, &Subject{PID: pid, Via: "--pid"})
	}
	for _, id := range c.opts.Containers {
		c.subjects = append(c.subjects, resolveCRI(ctx, env, id, c.opts.CtrNamespaces))
	}
	for _, ref := range c.opts.Pods {
		p := ResolvePod(ctx, env, ref)
		c.named = append(c.named, p)
		if p.Sandbox != nil {
			c.subjects = append(c.subjects, p.Sandbox)
		}
		c.subjects = append(c.subjects, p.Containers...)
	}
	c.all = c.opts.All || (len(c.subjects) == 0 && len(c.named) == 0)
	if c.all {
		c.subjects = append(c.subjects, c.scanAll(pids, stats)...)
	}
	for _, s := range c.subjects {
		s.observe(env)
	}
	c.expect = KubeletExpect(ctx, env, c.opts.User)
}

// scanAll finds every process that descends from a runtime (a shim) and
// runs in a user namespace other than that runtime's. Processes in their
// runtime's namespace are counted only: on a node most pods share it by
// design (hostUsers: true).
func (c *criVerify) scanAll(pids []int, stats map[int]procfs.Stat) []*Subject {
	userns := map[int]uint64{}
	ns := func(pid int) (uint64, bool) {
		if v, ok := userns[pid]; ok {
			return v, v != 0
		}
		v, err := procfs.Namespace(c.env.Host, pid, "user")
		if err != nil {
			v = 0
		}
		userns[pid] = v
		return v, v != 0
	}
	var out []*Subject
	for _, pid := range pids {
		st, ok := stats[pid]
		if !ok || procfs.IsRuntime(st.Comm) {
			continue
		}
		rt := 0
		seen := map[int]bool{}
		for p := st.PPID; p > 0 && !seen[p]; {
			seen[p] = true
			a, ok := stats[p]
			if !ok {
				break
			}
			if procfs.IsRuntime(a.Comm) {
				rt = p
				break
			}
			p = a.PPID
		}
		if rt == 0 {
			continue
		}
		mine, ok1 := ns(pid)
		theirs, ok2 := ns(rt)
		switch {
		case !ok1 || !ok2:
			continue
		case mine == theirs:
			c.sharedRuns++
		default:
			out = append(out, &Subject{PID: pid, Via: "--all"})
		}
	}
	return out
}

func (c *criVerify) checkers() []checks.Checker {
	t := []checks.Target{c.env.Target}
	what := "the kubelet's range (or --user's)"
	list := []checks.Checker{
		checks.New(checks.Info{ID: c.id("runtime"), Title: "containerd runs", Targets: t,
			Doc: "A containerd process runs (found by a /proc scan); its user namespace is the reference for --all."}, c.checkRuntime),
		checks.New(checks.Info{ID: c.id("containers"), Title: "containers to verify", Targets: t,
			Doc: "Every --pid and --container resolves to a running process (crictl inspect, else ctr task ls); --all (the default) finds shim descendants in user namespaces of their own."}, c.checkSelection),
		checks.New(checks.Info{ID: c.id("userns"), Title: "containers in their own user namespace", Targets: t,
			Doc: "Each process runs in a user namespace other than its runtime's (its shim), by /proc/PID/ns/user inode; otherwise it runs as host root (hostUsers: false ignored)."}, c.checkUserns),
		checks.New(checks.Info{ID: c.id("uid_map"), Title: "uid_map inside the configured range", Targets: t,
			Doc: "Each process's /proc/PID/uid_map lies inside " + what + "; the kubelet's default 65536-4294967295 when it has none."}, c.mapChecker(false)),
		checks.New(checks.Info{ID: c.id("gid_map"), Title: "gid_map inside the configured range", Targets: t,
			Doc: "Each process's /proc/PID/gid_map lies inside " + what + "."}, c.mapChecker(true)),
		checks.New(checks.Info{ID: c.id("pods"), Title: "one range per pod, no overlap", Targets: t,
			Doc: "Processes grouped by user namespace (one per pod): each has one range, uid and gid alike for Kubernetes, and no two share host ids."}, c.checkPods),
		checks.New(checks.Info{ID: c.id("rootfs"), Title: "rootfs mechanism", Targets: t,
			Doc: "How the root file system is made readable, from /proc/PID/mountinfo: idmapped lower layers (ovl-idmapped) or an idmapped mount pass; a chowned snapshot copy warns."}, c.checkRootfs),
	}
	if c.kube() {
		list = append(list, checks.New(checks.Info{ID: c.id("pod"), Title: "pods by name", Targets: t,
			Doc: "Each --pod NAMESPACE/NAME is found through the CRI (crictl): its user namespace is its own, not the runtime's; each container shares the sandbox's user, net, ipc and uts namespaces; its ids are reported as a block of the kubelet's range."}, c.checkPodsByName))
		list = append(list, checks.New(checks.Info{ID: c.id("volumes"), Title: "volumes mounted idmapped", Targets: t,
			Doc: "Volume mounts (kubelet volume directories, tmpfs secrets and tokens) carry the idmapped option (Kubernetes ≥1.27)."}, c.checkVolumes))
	}
	return list
}

func (c *criVerify) checkRuntime(context.Context, *checks.Env) checks.Result {
	if c.scanErr != nil {
		return checks.Failf("run usernsctl verify where /proc is readable", "cannot list processes: %v", c.scanErr)
	}
	if len(c.daemons) == 0 {
		r := checks.Warnf("start containerd; each process is then judged against its own shim's user namespace",
			"no containerd process runs on this host (no comm \"containerd\" in /proc)")
		if c.all {
			r.Status = checks.Fail
			r.Remedy = "start containerd (`systemctl start containerd`), or name processes with --pid"
		}
		return r
	}
	var parts []string
	for _, d := range c.daemons {
		ino, err := procfs.Namespace(c.env.Host, d.PID, "user")
		if err != nil {
			parts = append(parts, fmt.Sprintf("pid %d (user namespace unreadable: %v)", d.PID, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("pid %d in user namespace %d", d.PID, ino))
	}
	return checks.Passf("containerd runs: %s", strings.Join(parts, "; ")).With("pids", daemonPIDs(c.daemons))
}

func daemonPIDs(ss []procfs.Stat) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = s.PID
	}
	return out
}

func (c *criVerify) runRemedy() string {
	if c.kube() {
		return "run a pod with `hostUsers: false` in its spec, e.g. `kubectl run userns-check --image=busybox --restart=Never --overrides='{\"spec\":{\"hostUsers\":false}}' -- sleep 3600`, then run verify again"
	}
	return "start a container with a user namespace, e.g. `ctr run -d --uidmap 0:START:65536 --gidmap 0:START:65536 IMAGE ID` with START from the kubelet's range, then run verify again"
}

func (c *criVerify) checkSelection(context.Context, *checks.Env) checks.Result {
	var ok, bad []string
	for _, s := range c.subjects {
		if s.Err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", s.Label(), s.Err))
			continue
		}
		ok = append(ok, fmt.Sprintf("%s (%s)", s.Label(), s.Via))
	}
	ev := func(r checks.Result) checks.Result {
		r = r.With("subjects", subjectsEvidence(c.subjects))
		if c.all {
			r = r.With("all", true).With("container_processes_in_runtime_userns", c.sharedRuns)
		}
		return r
	}
	switch {
	case len(bad) > 0:
		return ev(checks.Failf("name running containers (`crictl ps`, `ctr -n k8s.io task ls`) or live pids",
			"%s", strings.Join(append(bad, ok...), "\n")))
	case len(ok) == 0 && c.all:
		extra := ""
		if c.sharedRuns > 0 {
			extra = fmt.Sprintf(" (%d container %s in their runtime's user namespace)", c.sharedRuns, plural(c.sharedRuns, "process runs", "processes run"))
		}
		return ev(checks.Failf(c.runRemedy(),
			"no container process runs in a user namespace of its own%s: nothing proves that user namespaces work", extra))
	}
	head := fmt.Sprintf("verifying %d %s", len(ok), plural(len(ok), "process", "processes"))
	if c.all {
		head += " found by --all (descendants of a runtime shim in a user namespace other than the shim's)"
		if c.sharedRuns > 0 {
			head += fmt.Sprintf("; %d other container %s in their runtime's user namespace (hostUsers: true)", c.sharedRuns, plural(c.sharedRuns, "process runs", "processes run"))
		}
	}
	return ev(checks.Passf("%s:\n%s", head, strings.Join(ok, "\n")))
}

// live are the subjects that could be read.
func (c *criVerify) live() []*Subject {
	var out []*Subject
	for _, s := range c.subjects {
		if s.Proc != nil {
			out = append(out, s)
		}
	}
	return out
}

func (c *criVerify) none() (checks.Result, bool) {
	if len(c.live()) == 0 {
		return checks.Skipf("no process to judge (see %s)", c.id("containers")), true
	}
	return checks.Result{}, false
}

func (c *criVerify) checkUserns(_ context.Context, env *checks.Env) checks.Result {
	if r, none := c.none(); none {
		return r
	}
	return judgeUserns(env, c.live(), c.daemonRef, func([]*Subject) string {
		if c.kube() {
			return "run containerd ≥2.0 with runc ≥1.2 (containerd ≤1.6 ignores hostUsers: false, and a kubelet from 1.30 on refuses such pods against it) and set `hostUsers: false` in the pod spec; `usernsctl check --target kubernetes` names what is missing"
		}
		return "create the container with a user namespace (`ctr run --uidmap 0:START:65536 --gidmap 0:START:65536 …`, or hostUsers: false through the CRI)"
	})
}

func (c *criVerify) mapChecker(gid bool) func(context.Context, *checks.Env) checks.Result {
	return func(_ context.Context, env *checks.Env) checks.Result {
		if r, none := c.none(); none {
			return r
		}
		e := c.expect
		if e.Err != nil {
			return checks.Failf("fix what the message names (`usernsctl check --target kubernetes` explains), then run verify again",
				"cannot tell the configured range: %v", e.Err)
		}
		rs := e.Ranges(gid)
		if len(rs) == 0 {
			return checks.Failf(fmt.Sprintf("give %s a range: `usernsctl apply --target kubernetes` for the kubelet, or name the owner with --user", e.Owner),
				"%s: nothing to check the maps against", e.describe(gid))
		}
		var j judged
		for _, s := range c.live() {
			m, problem, unread := mapProblem(env, s, gid, c.daemonRef)
			file := procfs.Dir(s.PID) + "/" + mapFile(gid)
			switch {
			case unread:
				j.unread = append(j.unread, problem)
			case problem != "":
				j.bad = append(j.bad, problem)
			default:
				if out := inside(m, rs); len(out) > 0 {
					j.bad = append(j.bad, fmt.Sprintf("%s: %s `%s` lies outside %s", s.Label(), file, procfs.FormatMap(out), e.describe(gid)))
				} else {
					j.good = append(j.good, fmt.Sprintf("%s: %s `%s` lies inside %s", s.Label(), file, procfs.FormatMap(m), e.describe(gid)))
				}
			}
		}
		remedy := "recreate the container with a map inside the configured range; "
		if c.kube() {
			remedy = "the kubelet allocates pod ranges inside its own range: restart the kubelet after changing the kubelet user's ranges and recreate the pod; "
		}
		remedy += "`usernsctl check --target " + string(c.env.Target) + "` shows the range in effect"
		r := j.result(remedy, func(l string) string { return l }, func(l string) string { return l })
		if e.Default {
			r.Message += fmt.Sprintf("\nnote: %s, so the kubelet uses its default range 65536-4294967295", e.Note)
		}
		if n := selfNested(env); n != "" {
			r.Message += "\nnote: " + n
		}
		return r.With("owner", e.Owner).With("ranges", rs).With("subjects", subjectsEvidence(c.subjects))
	}
}

// pod is the processes that share one user namespace.
type pod struct {
	ino    uint64
	pids   []int
	uid    []procfs.IDMap
	gid    []procfs.IDMap
	label  string
	unread bool
}

func (c *criVerify) pods(env *checks.Env) []*pod {
	byNS := map[uint64]*pod{}
	var order []*pod
	for _, s := range c.live() {
		iso := isolate(env, s, c.daemonRef)
		if iso.err != nil || !iso.own {
			continue
		}
		p := byNS[iso.ino]
		if p == nil {
			p = &pod{ino: iso.ino, uid: s.Proc.UIDMap, gid: s.Proc.GIDMap, label: s.Label(), unread: s.Proc.UIDErr != nil || s.Proc.GIDErr != nil}
			byNS[iso.ino] = p
			order = append(order, p)
		}
		p.pids = append(p.pids, s.PID)
	}
	return order
}

func (p *pod) name() string {
	return fmt.Sprintf("user namespace %d (%s %s)", p.ino, plural(len(p.pids), "pid", "pids"), idsList(p.pids))
}

func (c *criVerify) checkPods(_ context.Context, env *checks.Env) checks.Result {
	if r, none := c.none(); none {
		return r
	}
	pods := c.pods(env)
	if len(pods) == 0 {
		return checks.Skipf("no process runs in a user namespace of its own (see %s)", c.id("userns"))
	}
	var good, bad []string
	for _, p := range pods {
		if p.unread {
			bad = append(bad, fmt.Sprintf("%s: its maps cannot be read (see %s)", p.name(), c.id("uid_map")))
			continue
		}
		line := fmt.Sprintf("%s: uid_map `%s`, gid_map `%s`", p.name(), procfs.FormatMap(p.uid), procfs.FormatMap(p.gid))
		switch {
		case c.kube() && (len(p.uid) != 1 || len(p.gid) != 1):
			bad = append(bad, line+": the kubelet gives each pod exactly one range")
		case c.kube() && !sameMap(p.uid, p.gid):
			bad = append(bad, line+": the kubelet maps uids and gids alike")
		default:
			good = append(good, line)
		}
	}
	for i := range pods {
		for j := i + 1; j < len(pods); j++ {
			for _, ov := range []struct {
				what string
				a, b []procfs.IDMap
			}{{"uids", pods[i].uid, pods[j].uid}, {"gids", pods[i].gid, pods[j].gid}} {
				if lo, hi, ok := overlap(ov.a, ov.b); ok {
					bad = append(bad, fmt.Sprintf("%s and %s share host %s %d-%d: the two are not isolated from each other", pods[i].name(), pods[j].name(), ov.what, lo, hi))
				}
			}
		}
	}
	ev := func(r checks.Result) checks.Result {
		var ps []map[string]any
		for _, p := range pods {
			ps = append(ps, map[string]any{"userns": p.ino, "pids": p.pids, "uid_map": procfs.FormatMap(p.uid), "gid_map": procfs.FormatMap(p.gid)})
		}
		return r.With("pods", ps)
	}
	if len(bad) > 0 {
		remedy := "give each container its own range (`ctr run --uidmap 0:START:65536` with a distinct 65536-aligned START)"
		if c.kube() {
			remedy = "let the kubelet allocate every pod's range (hostUsers: false); recreate pods made with hand-written maps, and make sure one kubelet owns the range (`usernsctl check --target kubernetes`)"
		}
		return ev(checks.Failf(remedy, "%s", strings.Join(append(bad, good...), "\n")))
	}
	return ev(checks.Passf("%d %s, each with one range, none sharing host ids:\n%s", len(pods), plural(len(pods), "user namespace", "user namespaces"), strings.Join(good, "\n")))
}

// overlap returns the first host ids two maps share.
func overlap(a, b []procfs.IDMap) (lo, hi uint64, ok bool) {
	for _, x := range a {
		for _, y := range b {
			l, h := max(x.Outside, y.Outside), min(x.OutsideEnd(), y.OutsideEnd())
			if l < h {
				return l, h - 1, true
			}
		}
	}
	return 0, 0, false
}

// byMountNS yields one subject per mount namespace (one per container),
// among those in a user namespace of their own.
func (c *criVerify) byMountNS(env *checks.Env) []*Subject {
	seen := map[uint64]bool{}
	var out []*Subject
	for _, s := range c.live() {
		if iso := isolate(env, s, c.daemonRef); iso.err != nil || !iso.own {
			continue
		}
		if mnt, ok := s.Proc.NS["mnt"]; ok {
			if seen[mnt] {
				continue
			}
			seen[mnt] = true
		}
		out = append(out, s)
	}
	return out
}

func (c *criVerify) checkRootfs(_ context.Context, env *checks.Env) checks.Result {
	if r, none := c.none(); none {
		return r
	}
	ss := c.byMountNS(env)
	if len(ss) == 0 {
		return checks.Skipf("no process runs in a user namespace of its own (see %s)", c.id("userns"))
	}
	var good, copies, unread []string
	kinds := map[string]int{}
	for _, s := range ss {
		p := s.Proc
		file := procfs.Dir(s.PID) + "/mountinfo"
		if p.MountErr != nil {
			unread = append(unread, fmt.Sprintf("%s: %v", s.Label(), p.MountErr))
			continue
		}
		root := rootMount(p.Mounts)
		if root == nil {
			unread = append(unread, fmt.Sprintf("%s: %s has no mount on /", s.Label(), file))
			continue
		}
		kind, detail := classifyRoot(root)
		kinds[kind]++
		line := fmt.Sprintf("%s: %s (%s, mount %d)", s.Label(), kind, detail, root.ID)
		if kind == chowned {
			copies = append(copies, line)
		} else {
			good = append(good, line)
		}
	}
	ev := func(r checks.Result) checks.Result { return r.With("mechanisms", kinds) }
	all := strings.Join(append(append(append([]string{}, good...), copies...), unread...), "\n")
	switch {
	case len(unread) > 0:
		return ev(checks.Warnf("run verify as root while the containers run", "%s", all))
	case len(copies) > 0:
		return ev(checks.Warnf("use containerd ≥2.0 on a kernel whose overlayfs supports idmapped lower layers (≥5.19; `usernsctl check` probes it as probe.overlay_idmap) so that images are not copied per mapping",
			"%s\nthe image snapshot is copied and chowned for each mapping: disk and start-up cost per container", all))
	}
	return ev(checks.Passf("%s", all))
}

func (c *criVerify) checkVolumes(_ context.Context, env *checks.Env) checks.Result {
	if r, none := c.none(); none {
		return r
	}
	if env.Kube != nil && !env.KubeAtLeast("1.27") {
		return checks.Skipf("Kubernetes %s chowns volumes for user-namespaced pods; idmapped volume mounts start with 1.27", env.Kube)
	}
	ss := c.byMountNS(env)
	if len(ss) == 0 {
		return checks.Skipf("no process runs in a user namespace of its own (see %s)", c.id("userns"))
	}
	var good, bad, unread []string
	total := 0
	for _, s := range ss {
		if s.Proc.MountErr != nil {
			unread = append(unread, fmt.Sprintf("%s: %v", s.Label(), s.Proc.MountErr))
			continue
		}
		var plain, mapped []string
		rootUID, known := procfs.ToOutside(s.Proc.UIDMap, 0)
		for _, m := range volumeMounts(s.Proc.Mounts, rootUID, known && s.Proc.UIDErr == nil) {
			total++
			desc := fmt.Sprintf("%s (%s %s)", m.Mountpoint, m.FSType, m.Root)
			if hasOpt(m.Options, "idmapped") {
				mapped = append(mapped, desc)
			} else {
				plain = append(plain, desc)
			}
		}
		sort.Strings(plain)
		switch {
		case len(plain) > 0:
			bad = append(bad, fmt.Sprintf("%s: %d volume %s without the idmapped option: %s", s.Label(), len(plain), plural(len(plain), "mount", "mounts"), strings.Join(plain, ", ")))
		case len(mapped) > 0:
			good = append(good, fmt.Sprintf("%s: %d volume %s idmapped: %s", s.Label(), len(mapped), plural(len(mapped), "mount", "mounts"), strings.Join(mapped, ", ")))
		default:
			good = append(good, fmt.Sprintf("%s: no volume mounts", s.Label()))
		}
	}
	all := strings.Join(append(append(append([]string{}, bad...), good...), unread...), "\n")
	switch {
	case len(bad) > 0:
		return checks.Failf("upgrade the OCI runtime to runc ≥1.2 (not 1.2.0) or crun ≥1.9 and containerd to ≥2.0: older ones cannot idmap the pod's volumes; then recreate the pods",
			"%s\nfiles in these volumes show up as nobody inside the pod", all).With("volumes", total)
	case len(unread) > 0:
		return checks.Warnf("run verify as root while the pods run", "%s", all)
	}
	return checks.Passf("%s", all).With("volumes", total)
}
