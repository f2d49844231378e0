// Package verify proves, after the daemon restarts, that containers really
// run in user namespaces with the configured ranges: it reads each
// container's /proc/PID/uid_map, gid_map, namespaces and mount table from
// the host and judges them with the check engine (schema
// usernsctl.verify/v1, same report and exit codes as `check`).
//
// For Docker it makes its own fresh probe container (an image imported from
// a tar of this very binary: no registry) because an existing container
// proves nothing: one started with --userns=host shows the identity map on
// a remapped daemon. For containerd and Kubernetes it judges the processes
// named by --pid, --container or --all.
//
// Namespaces are compared by the inodes of /proc/PID/ns/* links, and each
// container against its own runtime (the shim that is its ancestor), never
// against this tool's own namespace: usernsctl may itself run nested (kind,
// LXD, a container), where maps are relative.
package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/verify/procfs"
)

// Schema names the JSON contract of `verify --output json`.
const Schema = "usernsctl.verify/v1"

// Options are what the operator asked verify to look at.
type Options struct {
	// PIDs and Containers name processes to judge; All takes every
	// container process in a user namespace other than its runtime's
	// (containerd and Kubernetes only).
	PIDs       []int
	Containers []string
	// Pods are NAMESPACE/NAME pods (Kubernetes), resolved through the CRI.
	Pods []string
	All  bool
	// User owns the ranges containerd and Kubernetes containers must use;
	// "" means the kubelet's. Docker takes its remap user from env.User.
	User string
	// DockerHost is $DOCKER_HOST ("" = the CLI's default socket).
	DockerHost string
	// CtrNamespaces are containerd namespaces ctr searches first for
	// --container ($CONTAINERD_NAMESPACE); k8s.io and default follow.
	CtrNamespaces []string
	// StartProbe starts Docker's probe container; nil means no probe (a
	// snapshot cannot run one). cmd passes LiveProbe.
	StartProbe ProbeStarter
	// ProbeTimeout bounds the probe from import to the file written;
	// zero means DefaultProbeTimeout.
	ProbeTimeout time.Duration
}

// DefaultProbeTimeout bounds the Docker probe.
const DefaultProbeTimeout = 60 * time.Second

// cleanupTimeout bounds the removal of the probe container and image,
// which runs on a fresh context: an interrupted verify still cleans up.
const cleanupTimeout = 60 * time.Second

// ErrInterrupted is returned when the context ends during the probe; the
// probe's container, image and directories were removed first.
var ErrInterrupted = errors.New("verify was interrupted")

// Run verifies env.Target and returns the report. An error means the tool
// could not run (exit 2): an unknown target or an interrupt.
func Run(ctx context.Context, env *checks.Env, opts Options) (*checks.Report, error) {
	var list []checks.Checker
	switch env.Target {
	case checks.Docker:
		d := &dockerVerify{env: env, opts: opts}
		if err := d.prepare(ctx); err != nil {
			return nil, err
		}
		list = d.checkers()
	case checks.Containerd, checks.Kubernetes:
		c := &criVerify{env: env, opts: opts}
		c.prepare(ctx)
		list = c.checkers()
	default:
		return nil, fmt.Errorf("verify: target %q is not one of docker, containerd, kubernetes", env.Target)
	}
	rep := checks.Run(ctx, env, list, checks.Options{}, Schema)
	verified := rep.Ready
	rep.Verified = &verified
	return rep, nil
}

// all is every verify check, sorted by ID.
func all() []checks.Checker {
	var all []checks.Checker
	all = append(all, (&dockerVerify{}).checkers()...)
	all = append(all, (&criVerify{env: &checks.Env{Target: checks.Containerd}}).checkers()...)
	all = append(all, (&criVerify{env: &checks.Env{Target: checks.Kubernetes}}).checkers()...)
	checks.SortByID(all)
	return all
}

// Markdown is the table of verify checks in docs/verify.md.
func Markdown() string {
	b := &strings.Builder{}
	b.WriteString("| ID | what it proves |\n|---|---|\n")
	for _, c := range all() {
		fmt.Fprintf(b, "| `%s` | %s |\n", c.Info().ID, strings.ReplaceAll(c.Info().Doc, "|", "\\|"))
	}
	return b.String()
}

// All is every verify check, sorted by ID.
func All() []checks.Checker { return all() }

// List renders `verify --list`: every verify check with its targets.
func List() string {
	all := all()
	w := 0
	for _, c := range all {
		w = max(w, len(c.Info().ID))
	}
	b := &strings.Builder{}
	for _, c := range all {
		fmt.Fprintf(b, "%-*s  %s\n", w, c.Info().ID, c.Info().Title)
	}
	return b.String()
}

// Subject is one process verify judges.
type Subject struct {
	PID int
	// Container is the ID or name it was asked for or found by.
	Container string
	// Via says how the pid was found ("--pid", "docker inspect", "crictl
	// inspect", "ctr -n k8s.io task ls", "--all", "probe").
	Via string
	// UsernsMode is Docker's HostConfig.UsernsMode ("host" for a container
	// started with --userns=host).
	UsernsMode string
	Proc       *procfs.Process
	// Err is why the subject could not be resolved or read.
	Err error
	// Probe marks Docker's own probe container.
	Probe bool
}

// Label names the subject in messages.
func (s *Subject) Label() string {
	comm := ""
	if s.Proc != nil {
		comm = " " + s.Proc.Stat.Comm
	}
	switch {
	case s.Probe:
		return fmt.Sprintf("probe container %s (pid %d)", s.Container, s.PID)
	case s.Container != "":
		if s.PID > 0 {
			return fmt.Sprintf("container %s (pid %d%s)", short(s.Container), s.PID, comm)
		}
		return "container " + s.Container
	case s.Proc != nil && s.Proc.ContainerID != "":
		return fmt.Sprintf("pid %d%s (container %s)", s.PID, comm, short(s.Proc.ContainerID))
	}
	return fmt.Sprintf("pid %d%s", s.PID, comm)
}

// short cuts a 64-digit container ID to Docker's 12.
func short(id string) string {
	if len(id) == 64 {
		return id[:12]
	}
	return id
}

// observe fills s.Proc from /proc/PID.
func (s *Subject) observe(env *checks.Env) {
	if s.Err != nil || s.PID <= 0 {
		return
	}
	s.Proc, s.Err = procfs.Observe(env.Host, s.PID)
}

// evidence is the subject as JSON evidence.
func (s *Subject) evidence() map[string]any {
	ev := map[string]any{"pid": s.PID}
	if s.Container != "" {
		ev["container"] = s.Container
	}
	if s.Via != "" {
		ev["via"] = s.Via
	}
	if s.Err != nil {
		ev["error"] = s.Err.Error()
		return ev
	}
	p := s.Proc
	if p == nil {
		return ev
	}
	ev["comm"] = p.Stat.Comm
	if ino, ok := p.UserNS(); ok {
		ev["userns"] = ino
	}
	if p.UIDErr == nil {
		ev["uid_map"] = procfs.FormatMap(p.UIDMap)
	}
	if p.GIDErr == nil {
		ev["gid_map"] = procfs.FormatMap(p.GIDMap)
	}
	if p.Runtime != nil {
		ev["runtime"] = fmt.Sprintf("%d %s", p.Runtime.PID, p.Runtime.Comm)
		if p.RuntimeUserNSOK {
			ev["runtime_userns"] = p.RuntimeUserNS
		}
	}
	if s.UsernsMode != "" {
		ev["userns_mode"] = s.UsernsMode
	}
	return ev
}

func subjectsEvidence(ss []*Subject) []map[string]any {
	out := make([]map[string]any, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.evidence())
	}
	return out
}

// reference is the user namespace a subject must differ from: its
// runtime ancestor's (the shim), else fallback (the daemon found by a
// /proc scan), else PID 1's.
type reference struct {
	ino  uint64
	desc string
	err  error
}

func refFor(env *checks.Env, s *Subject, fallback *reference) reference {
	p := s.Proc
	if p.Runtime != nil && p.RuntimeUserNSOK {
		return reference{ino: p.RuntimeUserNS, desc: fmt.Sprintf("its runtime %s (pid %d)", p.Runtime.Comm, p.Runtime.PID)}
	}
	if fallback != nil && fallback.err == nil && fallback.desc != "" {
		return *fallback
	}
	ino, err := procfs.Namespace(env.Host, 1, "user")
	return reference{ino: ino, desc: "PID 1 (no runtime among its ancestors: " + p.Chain() + ")", err: err}
}

// isolation is one subject's user namespace against its reference.
type isolation struct {
	own  bool // in a user namespace of its own
	ino  uint64
	ref  reference
	err  error
	what string
}

func isolate(env *checks.Env, s *Subject, fallback *reference) isolation {
	ino, ok := s.Proc.UserNS()
	if !ok {
		return isolation{err: s.Proc.NSErr["user"]}
	}
	ref := refFor(env, s, fallback)
	if ref.err != nil {
		return isolation{ino: ino, err: fmt.Errorf("the user namespace of %s: %v", ref.desc, ref.err)}
	}
	return isolation{own: ino != ref.ino, ino: ino, ref: ref}
}

// idsList renders "4321, 4400".
func idsList(ns []int) string {
	sort.Ints(ns)
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}

// selfNested describes this tool's own user namespace when it is not the
// initial one: maps are then relative to it. "" when not nested or unknown.
func selfNested(env *checks.Env) string {
	b, err := env.Host.ReadFile("/proc/self/uid_map")
	if err != nil {
		return ""
	}
	m, err := procfs.ParseIDMap(strings.NewReader(string(b)), "/proc/self/uid_map")
	if err != nil || len(m) == 0 || procfs.Identity(m) {
		return ""
	}
	return fmt.Sprintf("usernsctl itself runs in a user namespace (/proc/self/uid_map `%s`): the maps below are relative to it", procfs.FormatMap(m))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
