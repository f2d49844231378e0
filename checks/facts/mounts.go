package facts

import (
	"bytes"

	"github.com/moby/sys/mountinfo"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/config/mounttable"
)

// MountinfoPath is the mount table usernsctl reads: its own process's
// view, which on a host is the host's.
const MountinfoPath = "/proc/self/mountinfo"

// Mounts is the host's mount table.
type Mounts struct {
	List []*mountinfo.Info
	// Err is why the table could not be read or parsed (with line).
	Err error
}

// MountsOf is the host's mount table, parsed once per run.
func MountsOf(env *checks.Env) *Mounts {
	return once(env, "mountinfo.self", func(env *checks.Env) *Mounts {
		b, err := env.Host.ReadFile(MountinfoPath)
		if err != nil {
			return &Mounts{Err: err}
		}
		ms, err := mounttable.Parse(bytes.NewReader(b), MountinfoPath)
		return &Mounts{List: ms, Err: err}
	})
}
