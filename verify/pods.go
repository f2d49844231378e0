package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/verify/procfs"
)

// Pod is one pod named by --pod NAMESPACE/NAME, resolved through the CRI
// (crictl): its sandbox (the pause process) and its running containers.
type Pod struct {
	Namespace, Name string
	// ID is the ready sandbox's id; "" when the pod was not found.
	ID      string
	Sandbox *Subject
	// Containers are the pod's running containers (sandbox excluded).
	Containers []*Subject
	Err        error
}

// Ref is "NAMESPACE/NAME".
func (p *Pod) Ref() string { return p.Namespace + "/" + p.Name }

// ParsePodRef reads a --pod value: "NAMESPACE/NAME", or "NAME" in the
// default namespace.
func ParsePodRef(s string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		ns, name = "default", s
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("--pod %q: want NAMESPACE/NAME (or NAME in the default namespace)", s)
	}
	return ns, name, nil
}

// ResolvePod finds the ready sandbox of NAMESPACE/NAME and its running
// containers with crictl (the CRI socket comes from crictl's own
// configuration: /etc/crictl.yaml or CONTAINER_RUNTIME_ENDPOINT).
func ResolvePod(ctx context.Context, env *checks.Env, ref string) *Pod {
	ns, name, err := ParsePodRef(ref)
	p := &Pod{Namespace: ns, Name: name, Err: err}
	if err != nil {
		return p
	}
	if !env.Run.Installed("crictl") {
		p.Err = fmt.Errorf("crictl is not installed: verify finds a pod's containers through the CRI with crictl (install cri-tools, or name the pids with --pid)")
		return p
	}
	out, err := env.Run.Run(ctx, "crictl", "pods", "--namespace", ns, "--name", name, "-o", "json")
	if err != nil {
		p.Err = cmdErr(err)
		return p
	}
	var pods struct {
		Items []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Metadata struct{ Name, Namespace string }
		} `json:"items"`
	}
	if err := json.Unmarshal(out.Stdout, &pods); err != nil {
		p.Err = fmt.Errorf("`crictl pods --namespace %s --name %s -o json`: %v", ns, name, err)
		return p
	}
	for _, it := range pods.Items {
		// --name is a regular expression to crictl: keep the exact name.
		if it.Metadata.Name == name && it.Metadata.Namespace == ns && it.State == "SANDBOX_READY" {
			p.ID = it.ID
			break
		}
	}
	if p.ID == "" {
		p.Err = fmt.Errorf("no ready pod %s in the CRI (`crictl pods --namespace %s --name %s`)", p.Ref(), ns, name)
		return p
	}
	p.Sandbox = &Subject{Container: p.ID, Via: "crictl inspectp (pod " + p.Ref() + " sandbox)"}
	if pid, err := crictlInspectPID(ctx, env, "inspectp", p.ID); err != nil {
		p.Sandbox.Err = err
	} else {
		p.Sandbox.PID = pid
	}
	out, err = env.Run.Run(ctx, "crictl", "ps", "--pod", p.ID, "-o", "json")
	if err != nil {
		p.Err = cmdErr(err)
		return p
	}
	var cs struct {
		Containers []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Metadata struct{ Name string }
		} `json:"containers"`
	}
	if err := json.Unmarshal(out.Stdout, &cs); err != nil {
		p.Err = fmt.Errorf("`crictl ps --pod %s -o json`: %v", p.ID, err)
		return p
	}
	for _, c := range cs.Containers {
		if c.State != "CONTAINER_RUNNING" {
			continue
		}
		s := &Subject{Container: c.ID, Via: fmt.Sprintf("crictl inspect (pod %s, container %s)", p.Ref(), c.Metadata.Name)}
		if pid, err := crictlInspectPID(ctx, env, "inspect", c.ID); err != nil {
			s.Err = err
		} else {
			s.PID = pid
		}
		p.Containers = append(p.Containers, s)
	}
	if len(p.Containers) == 0 {
		p.Err = fmt.Errorf("pod %s (sandbox %s) has no running container", p.Ref(), short(p.ID))
	}
	return p
}

// crictlInspectPID is the pid `crictl inspect ID` (or inspectp, a sandbox)
// reports.
func crictlInspectPID(ctx context.Context, env *checks.Env, verb, id string) (int, error) {
	out, err := env.Run.Run(ctx, "crictl", verb, id)
	if err != nil {
		return 0, cmdErr(err)
	}
	var got struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal(out.Stdout, &got); err != nil {
		return 0, fmt.Errorf("`crictl %s %s`: %v", verb, id, err)
	}
	if got.Info.Pid <= 0 {
		return 0, fmt.Errorf("`crictl %s %s`: no pid", verb, id)
	}
	return got.Info.Pid, nil
}

// podShared are the namespaces a pod's containers share with its sandbox
// (pid only with shareProcessNamespace, so it is not required).
var podShared = []string{"user", "net", "ipc", "uts"}

// checkPodsByName judges each --pod: found through the CRI, its user
// namespace its own (not the runtime's), every container in the sandbox's
// user, net, ipc and uts namespaces, and where its ids lie in the range.
func (c *criVerify) checkPodsByName(_ context.Context, env *checks.Env) checks.Result {
	if len(c.named) == 0 {
		return checks.Skipf("no --pod named")
	}
	var good, bad []string
	var evidence []map[string]any
	for _, p := range c.named {
		ev := map[string]any{"pod": p.Ref(), "sandbox": p.ID}
		evidence = append(evidence, ev)
		if p.Err != nil {
			bad = append(bad, fmt.Sprintf("pod %s: %v", p.Ref(), p.Err))
			continue
		}
		sb := p.Sandbox
		if sb.Err != nil || sb.Proc == nil {
			bad = append(bad, fmt.Sprintf("pod %s: its sandbox cannot be read: %v", p.Ref(), sb.Err))
			continue
		}
		ev["sandbox_pid"] = sb.PID
		iso := isolate(env, sb, c.daemonRef)
		if iso.err != nil {
			bad = append(bad, fmt.Sprintf("pod %s: %v", p.Ref(), iso.err))
			continue
		}
		ev["userns"], ev["uid_map"], ev["gid_map"] = iso.ino, procfs.FormatMap(sb.Proc.UIDMap), procfs.FormatMap(sb.Proc.GIDMap)
		var problems, notes []string
		if !iso.own {
			problems = append(problems, fmt.Sprintf("runs in the user namespace of %s (%d): hostUsers: false is not set, or was dropped (the API server's UserNamespacesSupport gate) or ignored", iso.ref.desc, iso.ino))
		}
		if blk, ok := c.block(sb.Proc.UIDMap); ok {
			ev["block"] = blk
			notes = append(notes, blk)
		}
		var members []map[string]any
		for _, s := range p.Containers {
			m := map[string]any{"container": s.Container, "pid": s.PID}
			members = append(members, m)
			if s.Err != nil || s.Proc == nil {
				problems = append(problems, fmt.Sprintf("%s: %v", s.Label(), s.Err))
				continue
			}
			shares := map[string]bool{}
			var not []string
			for _, k := range podShared {
				same := s.Proc.NS[k] != 0 && s.Proc.NS[k] == sb.Proc.NS[k]
				shares[k] = same
				if !same {
					not = append(not, k)
				}
			}
			m["shares"] = shares
			if len(not) > 0 {
				problems = append(problems, fmt.Sprintf("%s does not share the sandbox's %s namespace", s.Label(), strings.Join(not, ", ")))
			}
		}
		ev["containers"] = members
		head := fmt.Sprintf("pod %s (sandbox pid %d): user namespace %d, uid_map `%s`, gid_map `%s`, %s sharing its user, net, ipc and uts namespaces",
			p.Ref(), sb.PID, iso.ino, procfs.FormatMap(sb.Proc.UIDMap), procfs.FormatMap(sb.Proc.GIDMap), plural(len(p.Containers), "1 container", fmt.Sprintf("%d containers", len(p.Containers))))
		if len(notes) > 0 {
			head += "; " + strings.Join(notes, "; ")
		}
		if len(problems) > 0 {
			bad = append(bad, head+": "+strings.Join(problems, "; "))
			continue
		}
		good = append(good, head)
	}
	r := checks.Passf("%s", strings.Join(good, "\n"))
	if len(bad) > 0 {
		r = checks.Failf("set `hostUsers: false` in the pod spec and recreate the pod; `usernsctl check --target kubernetes` names what the node lacks",
			"%s", strings.Join(append(bad, good...), "\n"))
	}
	return r.With("pods", evidence)
}

// block says which of the kubelet's per-pod blocks a map's first host id
// starts, counted from the range's start.
func (c *criVerify) block(m []procfs.IDMap) (string, bool) {
	if len(m) != 1 || c.expect == nil || len(c.expect.UID) == 0 {
		return "", false
	}
	r := c.expect.UID[0]
	if m[0].Outside < r.Start || m[0].Outside >= r.End() || m[0].Count == 0 {
		return "", false
	}
	off := m[0].Outside - r.Start
	if off%m[0].Count != 0 {
		return fmt.Sprintf("host ids %d-%d, not aligned to a block of %s", m[0].Outside, m[0].OutsideEnd()-1, r.Where), true
	}
	return fmt.Sprintf("block %d of %d ids in %s %s", off/m[0].Count, m[0].Count, c.expect.Owner, r.Where), true
}
