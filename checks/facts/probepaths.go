package facts

import (
	"context"

	"github.com/usernsctl/usernsctl/checks"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
)

// SnapshotterPath is the directory whose filesystem holds containerd's
// overlayfs snapshots: the snapshotter's root_path when set, else
// containerd's root (containerd.snapshotter probes the same path, so the
// two checks share one probe run and one key in probes.json). A config that
// does not load gives the default root, with err saying why.
func SnapshotterPath(ctx context.Context, env *checks.Env) (dir, from string, err error) {
	c := ContainerdConfig(ctx, env)
	if c.Err != nil {
		return cdconfig.DefaultRoot, "containerd's default root (the config does not load)", c.Err
	}
	p, o, err := c.Config.String("", "plugins", cdconfig.PluginOverlayfs, "root_path")
	if err == nil && p == "" {
		p, o, err = c.Config.Root()
	}
	if err != nil {
		return cdconfig.DefaultRoot, "containerd's default root", err
	}
	if o.IsZero() {
		return p, "containerd's default root", nil
	}
	return p, "set in " + o.String(), nil
}
