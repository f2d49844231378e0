// Package docker holds the docker area's checks: the daemon.json in
// effect, the userns-remap value and its account, dockerd flags that clash
// with daemon.json, settings that stop a remapped dockerd or its
// containers, and what disappears from view when the data root moves.
package docker

import (
	"fmt"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
)

var docker = []checks.Target{checks.Docker}

// Checkers returns the docker area's checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "docker.daemon_json", Title: "daemon.json in effect",
			Doc:     "Finds the daemon.json dockerd reads (--config-file in docker.service and its drop-ins, else /etc/docker/daemon.json) and parses it strictly, with line and column on error; notes snap and rootless configs that are not in effect.",
			Targets: docker,
		}, checkDaemonJSON),
		checks.New(checks.Info{
			ID: "docker.userns_remap", Title: "userns-remap value and account",
			Doc:     "Resolves userns-remap (--user, else daemon.json, else the dockerd flag, else default) to its account the way dockerd does: root is refused, a named user and its group must exist.",
			Targets: docker,
		}, checkUsernsRemap),
		checks.New(checks.Info{
			ID: "docker.flag_conflicts", Title: "dockerd flags vs daemon.json",
			Doc:     "No daemon.json directive is also a dockerd flag in docker.service, its drop-ins or the option files they read (dockerd refuses to start); userns-remap given as a flag; one ExecStart= in effect.",
			Targets: docker,
		}, checkFlagConflicts),
		checks.New(checks.Info{
			ID: "docker.containerd_snapshotter", Title: "containerd snapshotter feature",
			Doc:     `"features": {"containerd-snapshotter": true} (or --feature) makes a remapped dockerd exit at start.`,
			Targets: docker,
		}, checkContainerdSnapshotter),
		checks.New(checks.Info{
			ID: "docker.default_runtime", Title: "default OCI runtime",
			Doc:     "A default-runtime other than runc is named: not every OCI runtime works with userns-remap.",
			Targets: docker,
		}, checkDefaultRuntime),
		checks.New(checks.Info{
			ID: "docker.host_namespaces", Title: "containers using host namespaces",
			Doc:     "Existing containers with --net=host, --pid=host or --privileged (hostconfig.json under the data root) stop starting under userns-remap unless run with --userns=host.",
			Targets: docker,
		}, checkHostNamespaces),
		checks.New(checks.Info{
			ID: "docker.data_root", Title: "images and volumes after the data root moves",
			Doc:     "With remap on, dockerd uses <data-root>/<uid>.<gid>: existing images and volumes vanish from view until remap is turned off.",
			Targets: docker,
		}, checkDataRoot),
	}
}

// config returns the daemon.json fact, or a skip result when it cannot be
// read (docker.daemon_json reports why).
func config(env *checks.Env) (*facts.DockerConfig, *checks.Result) {
	d := facts.DockerConfigOf(env)
	if d.Err != nil {
		r := checks.Skipf("%s cannot be read, so this cannot be judged (see docker.daemon_json)", d.Path)
		return nil, &r
	}
	return d, nil
}

// remapState says whether remap is on now (configured) and, if not, that
// apply is about to turn it on, for messages.
func remapState(env *checks.Env) (facts.DockerRemapSetting, string) {
	set := facts.DockerRemapSettingOf(env)
	if set.Err == nil && set.Value != "" {
		return set, fmt.Sprintf("with userns-remap %q set (%s)", set.Value, set.Where)
	}
	return set, "once userns-remap is enabled (usernsctl apply --target docker)"
}
