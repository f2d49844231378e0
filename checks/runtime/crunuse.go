package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// crunUse says whether the node's CRI runtime runs crun: only then does an
// old crun drop idmap requests of user-namespaced pods. A crun that is
// merely installed beside containerd's runc (Debian pulls it in) is not in
// the path. known is false when that cannot be told: CRI-O (whose default
// runtime is crun on Fedora) or a config that does not load.
func crunUse(ctx context.Context, env *checks.Env) (used bool, where string, known bool) {
	if !facts.VersionOf(ctx, env, versions.Containerd).Installed {
		return false, "", false
	}
	c := facts.ContainerdConfigOf(ctx, env)
	if c.Err != nil {
		return false, "", false
	}
	// Handlers live under the CRI plugin of either generation; a handler
	// runs crun when its options.BinaryName names it.
	var hits []string
	for _, plugin := range []string{cdconfig.PluginCRIv2, cdconfig.PluginCRIRuntime} {
		v, _, ok := c.Config.Lookup("plugins", plugin, "containerd", "runtimes")
		rts, _ := v.(map[string]any)
		if !ok {
			continue
		}
		for name := range rts {
			bin, o, err := c.Config.String("", "plugins", plugin, "containerd", "runtimes", name, "options", "BinaryName")
			if err == nil && strings.Contains(bin, "crun") {
				hits = append(hits, fmt.Sprintf("handler %q (BinaryName %s, %s)", name, bin, o))
			}
		}
	}
	sort.Strings(hits)
	if len(hits) > 0 {
		return true, strings.Join(hits, "; "), true
	}
	return false, "no CRI runtime handler of containerd names crun (" + c.Path + ")", true
}
