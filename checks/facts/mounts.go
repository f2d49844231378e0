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

// Mounts is the host's mount table, parsed once per run.
func Mounts(env *checks.Env) ([]*mountinfo.Info, error) {
	return checks.Fact(env, "mountinfo.self", func(env *checks.Env) ([]*mountinfo.Info, error) {
		b, err := env.Host.ReadFile(MountinfoPath)
		if err != nil {
			return nil, err
		}
		return mounttable.Parse(bytes.NewReader(b), MountinfoPath)
	})
}
