package facts

import (
	"context"

	"github.com/usernsctl/usernsctl/checks"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
)

// SnapshotterPath is the directory whose filesystem holds containerd's
// overlayfs snapshots: the snapshotter's root_path when set, else
// containerd's root (containerd.snapshotter probes the same path, so the
// two checks share one probe run and one key in probes.json).
type SnapshotterPath struct {
	Dir string
	// From says where Dir was set ("set in FILE line N", "containerd's
	// default root").
	From string
	// Err is why the config could not tell: Dir is then the default root.
	Err error
}

// SnapshotterPathOf resolves the snapshotter's directory from the
// containerd config in effect.
func SnapshotterPathOf(ctx context.Context, env *checks.Env) SnapshotterPath {
	c := ContainerdConfigOf(ctx, env)
	if c.Err != nil {
		return SnapshotterPath{cdconfig.DefaultRoot, "containerd's default root (the config does not load)", c.Err}
	}
	p, o, err := c.Config.String("", "plugins", cdconfig.PluginOverlayfs, "root_path")
	if err == nil && p == "" {
		p, o, err = c.Config.Root()
	}
	if err != nil {
		return SnapshotterPath{cdconfig.DefaultRoot, "containerd's default root", err}
	}
	if o.IsZero() {
		return SnapshotterPath{p, "containerd's default root", nil}
	}
	return SnapshotterPath{p, "set in " + o.String(), nil}
}
