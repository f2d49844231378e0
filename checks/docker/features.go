package docker

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
)

const snapshotter = "containerd-snapshotter"

func checkContainerdSnapshotter(ctx context.Context, env *checks.Env) checks.Result {
	d, skip := config(env)
	if skip != nil {
		return *skip
	}
	_, when := remapState(env)
	dv := facts.VersionOf(ctx, env, versions.Dockerd)
	assumed := ""
	if !dv.Known() {
		assumed = fmt.Sprintf(" (dockerd's version is unknown: dockerd %s and later assumed)", rules.DockerC8dRefused)
	}
	var on []string
	var remedies []string
	if d.File != nil {
		if feat, ok := d.Values["features"].(map[string]any); ok {
			if v, set := feat[snapshotter]; set {
				if b, _ := v.(bool); b {
					m, _ := d.File.Lookup("features")
					line := m.Line
					for _, c := range m.Children {
						if c.Key == snapshotter {
							line = c.Line
						}
					}
					on = append(on, fmt.Sprintf(`"features": {%q: true} in %s line %d`, snapshotter, d.Path, line))
					remedies = append(remedies, fmt.Sprintf(`delete %q from "features" in %s (dockerd then turns it off by itself when remapping)`, snapshotter, d.Path))
				}
			}
		}
	}
	var notes []string
	for _, f := range facts.DockerUnitOf(env).Flags {
		if f.Name != "feature" {
			continue
		}
		name, val, hasVal := strings.Cut(f.Value, "=")
		if name != snapshotter {
			continue
		}
		if has, _ := facts.DockerdAtLeast(env, rules.DockerFeatureFlag); !has {
			notes = append(notes, fmt.Sprintf("`%s` (%s): %s has no --feature flag (it came in %s)", f.Text, f.Where(), dockerdName(dv), rules.DockerFeatureFlag))
			continue
		}
		if b, err := strconv.ParseBool(val); !hasVal || (err == nil && b) {
			on = append(on, fmt.Sprintf("`%s` (%s)", f.Text, f.Where()))
			remedies = append(remedies, fmt.Sprintf("remove `%s` from %s", f.Text, f.Where()))
		}
	}
	refused, _ := facts.DockerdAtLeast(env, rules.DockerC8dRefused)
	if refused {
		if r, bad := storageDriver(env, d, dv, when, assumed); bad {
			if len(on) > 0 {
				r.Message += fmt.Sprintf("; the containerd snapshotter is also enabled explicitly by %s, which refuses start by itself", strings.Join(on, " and "))
				r.Remedy += "; " + strings.Join(remedies, "; ")
			}
			return r
		}
	}
	if len(on) > 0 {
		by := strings.Join(on, " and ")
		remedy := strings.Join(remedies, "; ")
		switch {
		case refused:
			// R23, 29.0+: a refusal at start.
			return checks.Failf(remedy,
				"the containerd snapshotter is enabled explicitly by %s: %s %s exits at start (`containerd-snapshotter is explicitly enabled, but is not compatible with userns remapping. Please disable userns remapping or containerd-snapshotter`)%s",
				by, when, dockerdName(dv), assumed).With("explicit", on)
		case atLeast(dv, rules.DockerC8dRemap):
			// R23, 25–28: it starts, at a cost.
			return checks.Warnf(remedy+" (images in the containerd store then stay out of view; those under the graphdriver come back)",
				"the containerd snapshotter is enabled explicitly by %s: %s %s starts with the containerd image store and chowns every container's snapshot to the remapped root when it creates the container (time and disk per container), and BuildKit builds break under remapping (moby#47377); dockerd %s and later refuse this combination at start",
				by, when, dockerdName(dv), rules.DockerC8dRefused).With("explicit", on)
		case atLeast(dv, rules.DockerC8dStore):
			// R23, 24: the store has no ID mapping yet (not verified).
			return checks.Warnf(remedy,
				"the containerd snapshotter is enabled explicitly by %s: %s %s uses the containerd image store, which has no ID mapping before %s: remapped containers see image files owned by ids outside their map (outcome not verified)",
				by, when, dockerdName(dv), rules.DockerC8dRemap).With("explicit", on)
		}
		// R23, 20.10 and 23: the key is accepted and has no effect.
		return checks.Passf("%s sets the containerd snapshotter, which %s ignores (the containerd image store came in %s); remove it before upgrading: dockerd %s and later refuse it with userns-remap",
			by, dockerdName(dv), rules.DockerC8dStore, rules.DockerC8dRefused).With("explicit", on)
	}
	msg := "the containerd-snapshotter feature is not enabled explicitly"
	if refused && dv.Known() {
		msg += fmt.Sprintf("; dockerd %s uses the containerd image store by default and turns it off when remapping (`userns remapping enabled, disabling containerd snapshotter`), so images kept in that store are not visible with remap on", dv.Version)
	}
	if len(notes) > 0 {
		msg += " (note: " + strings.Join(notes, "; ") + ")"
	}
	return checks.Passf("%s", msg)
}

// graphdrivers are the storage drivers dockerd 29 registers on Linux
// (moby daemon/graphdriver/register, docker-v29.0.0 … docker-v29.7.2).
var graphdrivers = map[string]bool{"overlay2": true, "fuse-overlayfs": true, "btrfs": true, "zfs": true, "vfs": true}

// storageDriver is R24: from rules.DockerC8dRefused on, remapping forces
// the graphdriver store, so a storage-driver that is no registered
// graphdriver (a snapshotter name such as overlayfs) refuses start.
func storageDriver(env *checks.Env, d *facts.DockerConfig, dv facts.Program, when, assumed string) (checks.Result, bool) {
	name, where, remedy := "", "", ""
	if f, ok := facts.DockerUnitOf(env).Flag("storage-driver"); ok && f.Value != "" {
		name, where, remedy = f.Value, fmt.Sprintf("`%s` (%s)", f.Text, f.Where()), fmt.Sprintf("replace `%s` in %s with `--storage-driver=overlay2`", f.Text, f.Where())
	} else if d.File != nil {
		if s, ok, err := d.File.String("storage-driver"); ok && err == nil && s != "" {
			name, where, remedy = s, d.File.Location("storage-driver"), fmt.Sprintf(`set "storage-driver": "overlay2" in %s`, d.File.Location("storage-driver"))
		}
	}
	if name == "" || graphdrivers[name] {
		return checks.Result{}, false
	}
	return checks.Failf(remedy+" (images kept by the snapshotter stay out of view while remapping)",
		"storage-driver %q (%s) is no graphdriver (a containerd snapshotter name?): %s %s uses the graphdriver store when remapping and exits at start (`graphdriver is explicitly enabled but %q is not registered`)%s",
		name, where, when, dockerdName(dv), name, assumed).With("storage_driver", name), true
}

func atLeast(p facts.Program, t rules.Threshold) bool {
	return !p.Known() || p.Version.AtLeast(t.Value)
}

// runcNames are the runtime names dockerd resolves to runc.
var runcNames = map[string]bool{"": true, "runc": true, "io.containerd.runc.v2": true}

func checkDefaultRuntime(ctx context.Context, env *checks.Env) checks.Result {
	d, skip := config(env)
	if skip != nil {
		return *skip
	}
	du := facts.DockerUnitOf(env)
	name, where := "", ""
	if f, ok := du.Flag("default-runtime"); ok {
		name, where = f.Value, fmt.Sprintf("`%s`, %s", f.Text, f.Where())
	} else if d.File != nil {
		if s, ok, err := d.File.String("default-runtime"); ok && err == nil {
			name, where = s, d.File.Location("default-runtime")
		}
	}
	if runcNames[name] {
		if name == "" {
			return checks.Passf("no default-runtime is set: containers run with runc").With("runtime", "runc")
		}
		return checks.Passf("default-runtime %q (%s) is runc", name, where).With("runtime", name)
	}
	binary := runtimePath(d, du, name)
	r := func(res checks.Result) checks.Result {
		return res.With("runtime", name).With("source", where).With("path", binary)
	}
	if binary != "" && strings.Contains(path.Base(binary), "runc") {
		return r(checks.Passf("default-runtime %q (%s) is runc under another name (%s)", name, where, binary))
	}
	what := fmt.Sprintf("%q", name)
	if binary != "" {
		what += " (" + binary + ")"
	}
	return r(checks.Warnf(fmt.Sprintf("after `%s` and a restart, start a test container with it (`docker run --rm --runtime %s IMAGE cat /proc/self/uid_map` must not show `0 0 4294967295`), or set default-runtime to runc", applyDocker, name),
		"default-runtime is %s (%s): dockerd hands every container to it, and not every OCI runtime works with userns-remap (gVisor's runsc and Kata do not)", what, where))
}

// runtimePath finds the binary of a named runtime: --add-runtime NAME=PATH
// or daemon.json "runtimes": {NAME: {"path": PATH}}.
func runtimePath(d *facts.DockerConfig, du *facts.DockerUnit, name string) string {
	for _, f := range du.Flags {
		if n, p, ok := strings.Cut(f.Value, "="); f.Name == "add-runtime" && ok && n == name {
			return p
		}
	}
	if rt, ok := d.Values["runtimes"].(map[string]any); ok {
		if e, ok := rt[name].(map[string]any); ok {
			if p, ok := e["path"].(string); ok {
				return p
			}
		}
	}
	return ""
}
