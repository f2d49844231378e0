package procfs

import (
	"bytes"
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"

	"github.com/usernsctl/usernsctl/config/mounttable"
	"github.com/usernsctl/usernsctl/internal/host"
)

// Process is one process as verify and ns judge it, read once.
type Process struct {
	Stat Stat
	// Cmdline is the process's argv.
	Cmdline []string
	// NS maps a namespace kind to its inode; NSErr holds the kinds that
	// could not be read (a kernel without time namespaces, say).
	NS    map[string]uint64
	NSErr map[string]error
	// UIDMap and GIDMap as read from this tool's user namespace.
	UIDMap, GIDMap  []IDMap
	UIDErr, GIDErr  error
	MountErr        error
	Mounts          []*mountinfo.Info
	ContainerID     string
	Ancestors       []Stat
	AncestryErr     error
	Runtime         *Stat // nearest ancestor that is a runtime (shim, conmon, daemon)
	RuntimeUserNS   uint64
	RuntimeUserNSOK bool
	RuntimeErr      error
}

// Observe reads pid's /proc entries. It fails only when the process does
// not exist (or its stat is unreadable); every other part carries its own
// error.
func Observe(h *host.Host, pid int) (*Process, error) {
	st, err := ReadStat(h, pid)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &fs.PathError{Op: "read", Path: Dir(pid), Err: ErrNoProcess}
	}
	if err != nil {
		return nil, err
	}
	p := &Process{Stat: st, NS: map[string]uint64{}, NSErr: map[string]error{}}
	p.Cmdline, _ = Cmdline(h, pid)
	for _, k := range Kinds {
		if ino, err := Namespace(h, pid, k); err != nil {
			p.NSErr[k] = err
		} else {
			p.NS[k] = ino
		}
	}
	p.UIDMap, p.UIDErr = ReadIDMap(h, pid, "uid_map")
	p.GIDMap, p.GIDErr = ReadIDMap(h, pid, "gid_map")
	p.ContainerID = ContainerID(h, pid)
	if b, err := h.ReadFile(Dir(pid) + "/mountinfo"); err != nil {
		p.MountErr = err
	} else {
		p.Mounts, p.MountErr = mounttable.Parse(bytes.NewReader(b), Dir(pid)+"/mountinfo")
	}
	p.Ancestors, p.AncestryErr = Ancestry(h, pid)
	for i := range p.Ancestors {
		if IsRuntime(p.Ancestors[i].Comm) {
			p.Runtime = &p.Ancestors[i]
			break
		}
	}
	if p.Runtime != nil {
		p.RuntimeUserNS, p.RuntimeErr = Namespace(h, p.Runtime.PID, "user")
		p.RuntimeUserNSOK = p.RuntimeErr == nil
	}
	return p, nil
}

// UserNS is the process's user namespace inode; ok is false when unread.
func (p *Process) UserNS() (uint64, bool) {
	ino, ok := p.NS["user"]
	return ino, ok
}

// Chain describes the process and its ancestors up to the runtime, for
// messages: "4321 usernsctl ← 4300 containerd-shim".
func (p *Process) Chain() string {
	parts := []string{chainItem(p.Stat)}
	for _, a := range p.Ancestors {
		parts = append(parts, chainItem(a))
		if p.Runtime != nil && a.PID == p.Runtime.PID {
			break
		}
		if len(parts) == 4 {
			parts = append(parts, "…")
			break
		}
	}
	return strings.Join(parts, " ← ")
}

func chainItem(s Stat) string { return strconv.Itoa(s.PID) + " " + s.Comm }
