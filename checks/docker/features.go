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
)

const snapshotter = "containerd-snapshotter"

func checkContainerdSnapshotter(ctx context.Context, env *checks.Env) checks.Result {
	d, skip := config(env)
	if skip != nil {
		return *skip
	}
	_, when := remapState(env)
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
	for _, f := range facts.DockerUnitOf(env).Flags {
		if f.Name != "feature" {
			continue
		}
		name, val, hasVal := strings.Cut(f.Value, "=")
		if name != snapshotter {
			continue
		}
		if b, err := strconv.ParseBool(val); !hasVal || (err == nil && b) {
			on = append(on, fmt.Sprintf("`%s` (%s)", f.Text, f.Where()))
			remedies = append(remedies, fmt.Sprintf("remove `%s` from %s", f.Text, f.Where()))
		}
	}
	if len(on) > 0 {
		return checks.Failf(strings.Join(remedies, "; "),
			"the containerd snapshotter is enabled explicitly by %s: %s dockerd exits at start (`containerd-snapshotter is explicitly enabled, but is not compatible with userns remapping`)",
			strings.Join(on, " and "), when).With("explicit", on)
	}
	msg := "the containerd-snapshotter feature is not enabled explicitly"
	if p := facts.VersionOf(ctx, env, versions.Dockerd); p.Known() && p.Version.AtLeast("29.0") {
		msg += fmt.Sprintf("; dockerd %s uses the containerd image store by default and turns it off when remapping, so images kept in that store are not visible with remap on", p.Version)
	}
	return checks.Passf("%s", msg)
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
