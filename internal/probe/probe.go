// Package probe exercises the kernel the way container runtimes will:
// creating user namespaces and idmapped mounts for real. Live probes run
// only on the live host as root; snapshot trees replay recorded results.
package probe

import "context"

// Probe kinds. Each is recorded in probes.json under Spec.Key().
const (
	// UserNS: can this process create a user namespace with a real map?
	UserNS = "userns"
	// Idmap: can a directory on Path's filesystem be bind-mounted idmapped?
	Idmap = "idmap"
	// OverlayIdmap: does an overlay mounted over an idmapped lower directory
	// on Path's filesystem show the mapped owner (what containerd 2.x needs)?
	OverlayIdmap = "overlay-idmap"
	// TmpfsIdmap: can a fresh tmpfs be idmapped (Kubernetes secrets,
	// configmaps, emptyDir)? Path is unused.
	TmpfsIdmap = "tmpfs-idmap"
	// SelfUserNS: is usernsctl itself running inside a user namespace
	// (github.com/moby/sys/userns)? OK means "yes, nested".
	SelfUserNS = "self-userns"
)

// Spec names one probe: what to try and where.
type Spec struct {
	Kind string // one of the kinds above
	Path string // directory on the filesystem under test, if any
}

// Key is the probe's stable name in probes.json: "kind" or "kind:path".
func (s Spec) Key() string {
	if s.Path == "" {
		return s.Kind
	}
	return s.Kind + ":" + s.Path
}

// Result is what a probe found.
type Result struct {
	// Ran is false when the probe did not run (not root, snapshot without a
	// recording, ...); Reason says why.
	Ran    bool   `json:"ran"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	// Errno is the symbolic errno of the failing step ("EINVAL"), Step the
	// syscall or stage that failed.
	Errno string `json:"errno,omitempty"`
	Step  string `json:"step,omitempty"`
	Error string `json:"error,omitempty"`
	// Detail carries evidence: filesystem type, observed owner, timings.
	Detail map[string]string `json:"detail,omitempty"`
}

// Prober runs or replays probes.
type Prober interface {
	Probe(ctx context.Context, s Spec) Result
}

// Disabled answers every probe with "did not run" and a reason.
type Disabled struct{ Reason string }

// Probe implements Prober.
func (d Disabled) Probe(context.Context, Spec) Result { return Result{Reason: d.Reason} }
