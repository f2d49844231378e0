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
			Doc:     "Finds the daemon.json dockerd reads (--config-file in docker.service and its drop-ins, else /etc/docker/daemon.json; a --config-file that does not exist refuses start) and parses it in the installed dockerd's syntax, with line and column on error: 23 and later decode a UTF-8/UTF-16 byte order mark, read a whitespace-only file as {} and refuse data after the object; earlier releases read the first JSON value (an empty file or a BOM refuses start, data after the object is ignored). The deprecated \"graph\" key by release. Unknown keys dockerd refuses at start are judged for the keys usernsctl reads, misspelled (`userns_remap`, `Data-Root`: dockerd matches flag names exactly); other unknown keys are left to apply's `dockerd --validate` on a live dockerd 23 or later. Notes snap and rootless configs that are not in effect.",
			Targets: docker,
		}, checkDaemonJSON),
		checks.New(checks.Info{
			ID: "docker.userns_remap", Title: "userns-remap value and account",
			Doc:     "Resolves userns-remap (--user, else daemon.json, else the dockerd flag, else default) to its account the way dockerd does: /etc/passwd and /etc/group, then `getent` where nsswitch.conf names other sources; a named user and its group must exist (each missing lookup quoted as dockerd words it). The user named root is a warning: dockerd starts with user namespaces off but still moves the data root and refuses host-namespace containers; another uid-0 account is remapped like any user. \"userns-remap\": null is unset.",
			Targets: docker,
		}, checkUsernsRemap),
		checks.New(checks.Info{
			ID: "docker.flag_conflicts", Title: "dockerd flags vs daemon.json",
			Doc:     "No daemon.json directive is also a dockerd flag in docker.service, its drop-ins or the option files they read (dockerd refuses to start); userns-remap given as a flag; -g/--graph, which dockerd 23 refuses and 24 and later no longer know; one ExecStart= in effect.",
			Targets: docker,
		}, checkFlagConflicts),
		checks.New(checks.Info{
			ID: "docker.containerd_snapshotter", Title: "containerd snapshotter feature",
			Doc:     `"features": {"containerd-snapshotter": true} (or --feature, 28 and later) with userns-remap, by release: 29 and later refuse start; 25–28 start and chown every container's snapshot (BuildKit breaks); 24 has no ID mapping in that store; earlier releases ignore it. On 29, a storage-driver that is no graphdriver (a snapshotter name such as overlayfs) refuses start when remapping.`,
			Targets: docker,
		}, checkContainerdSnapshotter),
		checks.New(checks.Info{
			ID: "docker.default_runtime", Title: "default OCI runtime",
			Doc:     "A default-runtime other than runc is named: not every OCI runtime works with userns-remap.",
			Targets: docker,
		}, checkDefaultRuntime),
		checks.New(checks.Info{
			ID: "docker.host_namespaces", Title: "containers using host namespaces",
			Doc:     "Containers with --net=host, --pid=host, --privileged (or, 28 and later, --security-opt writable-cgroups) and no --userns=host: under the remapped data root dockerd uses, they fail at every start; under the old data root they are not loaded (they vanish with it) and recreating them is refused.",
			Targets: docker,
		}, checkHostNamespaces),
		checks.New(checks.Info{
			ID: "docker.remapped_root_access", Title: "search permission above the remapped data root",
			Doc:     "Every existing directory above <data-root>/<uid>.<gid> (the data root's real path, up to /) gives the remapped root x: o+x, or u+x/g+x when its owner or group is the remapped uid/gid; else dockerd refuses to start. Modes and owners are read through stat, so a snapshot records them.",
			Targets: docker,
		}, checkRemappedRootAccess),
		checks.New(checks.Info{
			ID: "docker.data_root", Title: "images and volumes after the data root moves",
			Doc:     "With remap on, dockerd uses <data-root>/<uid>.<gid> under the data root's real path: existing images, containers, volumes, networks, plugins and swarm state vanish from view until remap is turned off, and the data root becomes group-owned by the remapped gid.",
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
