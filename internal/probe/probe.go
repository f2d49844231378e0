// Package probe exercises the kernel the way container runtimes will:
// creating user namespaces and idmapped mounts for real. Live probes run
// only on the live host as root; snapshot trees replay recorded results.
package probe

import "context"

// Spec names one probe: what to try and where.
type Spec struct {
	Kind string // e.g. "userns", "idmap", "overlay-idmap"
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
