package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/rules"
)

// hostConfig is the part of a container's hostconfig.json that userns-remap
// cares about (moby's container.HostConfig field names).
type hostConfig struct {
	NetworkMode string
	PidMode     string
	Privileged  bool
	UsernsMode  string
	SecurityOpt []string
}

// hostUser is one container that a remapped dockerd would refuse.
type hostUser struct {
	id, name, root string
	uses           []string
}

func checkHostNamespaces(ctx context.Context, env *checks.Env) checks.Result {
	dr := facts.DockerDataRootRealOf(env)
	root, rootSrc := dr.Real, dr.Source
	target := remappedRoot(ctx, env, root)
	writable, _ := facts.DockerdAtLeast(env, rules.DockerWritableCgroups)
	// Containers of the plain data root, and of remapped ones already made.
	patterns := []string{path.Join(root, "containers/*/hostconfig.json"), path.Join(root, "*.*/containers/*/hostconfig.json")}
	var files []string
	for _, p := range patterns {
		m, _ := env.Host.Glob(p)
		files = append(files, m...)
	}
	var found []hostUser
	var unreadable []string
	total := 0
	for _, f := range files {
		dir := path.Dir(f)
		croot := path.Dir(path.Dir(dir))
		if croot != root && !remappedDir.MatchString(path.Base(croot)) {
			continue
		}
		total++
		b, err := env.Host.ReadFile(f)
		var hc hostConfig
		if err == nil {
			err = json.Unmarshal(b, &hc)
		}
		if err != nil {
			unreadable = append(unreadable, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		if hc.UsernsMode == "host" {
			continue
		}
		var uses []string
		if hc.NetworkMode == "host" {
			uses = append(uses, "--net=host")
		}
		if hc.PidMode == "host" {
			uses = append(uses, "--pid=host")
		}
		if hc.Privileged {
			uses = append(uses, "--privileged")
		}
		if writable && writableCgroups(hc.SecurityOpt) {
			uses = append(uses, "--security-opt writable-cgroups")
		}
		if len(uses) == 0 {
			continue
		}
		id := path.Base(dir)
		found = append(found, hostUser{id: id, name: containerName(env, dir), root: croot, uses: uses})
	}
	r := checks.Result{}.With("data_root", root).With("containers", total)
	if target != "" {
		r = r.With("remapped_root", target)
	}
	if len(unreadable) > 0 {
		r = r.With("unreadable", unreadable)
	}
	if len(found) == 0 {
		r.Status = checks.Pass
		if total == 0 {
			r.Message = fmt.Sprintf("no containers under %s (%s)", root, rootSrc)
		} else {
			r.Message = fmt.Sprintf("none of the %s under %s (%s) uses --net=host, --pid=host or --privileged without --userns=host", checks.Count(total, "container"), root, rootSrc)
		}
		if len(unreadable) > 0 {
			r.Message += fmt.Sprintf("; %s could not be read: %s", checks.Count(len(unreadable), "hostconfig.json file"), strings.Join(unreadable, "; "))
		}
		return r
	}
	var live, gone, ids []string
	used := map[string]bool{}
	for _, c := range found {
		for _, u := range c.uses {
			used[u] = true
		}
		short := c.id
		if len(short) > 12 {
			short = short[:12]
		}
		ids = append(ids, short)
		who := short
		if c.name != "" {
			who += " (" + c.name + ")"
		}
		entry := who + ": " + strings.Join(c.uses, ", ")
		if target != "" && c.root == target {
			live = append(live, entry)
		} else if c.root != root {
			gone = append(gone, entry+" (in "+c.root+")")
		} else {
			gone = append(gone, entry)
		}
	}
	_, when := remapState(env)
	var errs []string
	for _, e := range []struct{ use, text string }{
		{"--net=host", "cannot share the host's network namespace when user namespaces are enabled"},
		{"--pid=host", "cannot share the host PID namespace when user namespaces are enabled"},
		{"--privileged", "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode"},
		{"--security-opt writable-cgroups", "option WritableCgroups conflicts with user namespaces and rootless mode"},
	} {
		if used[e.use] {
			errs = append(errs, "`"+e.text+"`")
		}
	}
	r = r.With("host_namespace_containers", ids)
	r.Remedy = "recreate these containers with `--userns=host` added to their `docker run` options (compose: `userns_mode: host`), and without `--security-opt writable-cgroups`; keep them as they are only if they do not need host namespaces"
	// R33: a container under the remapped root dockerd uses is loaded and
	// refused at every start; one under another root is not loaded at all
	// (it vanishes from view with its data root), and recreating it fails.
	if len(live) > 0 {
		r.Status = checks.Fail
		r.Message = fmt.Sprintf("%s under %s, the data root dockerd uses %s, use host namespaces or privileged mode: %s. dockerd refuses to start them (%s)",
			count(len(live), total), target, when, strings.Join(live, "; "), strings.Join(errs, ", "))
		if len(gone) > 0 {
			r.Message += fmt.Sprintf("; %s made before remap would also be refused when recreated: %s", checks.Count(len(gone), "more container"), strings.Join(gone, "; "))
		}
		return r
	}
	newRoot := "<data-root>/<uid>.<gid>"
	if target != "" {
		newRoot = target
	}
	r.Status = checks.Warn
	r.Message = fmt.Sprintf("%s under %s use host namespaces or privileged mode: %s. %s dockerd works under %s and does not load them (they vanish from view with the rest of %s); recreating them as they are (`docker run`, compose) is refused (%s)",
		count(len(gone), total), root, strings.Join(gone, "; "), capitalize(when), newRoot, root, strings.Join(errs, ", "))
	return r
}

// writableCgroups reports a writable-cgroups security option, set either
// way: any makes a remapped container fail (moby daemon_unix.go
// parseSecurityOpt sets WritableCgroups, oci_linux.go refuses it).
func writableCgroups(opts []string) bool {
	for _, o := range opts {
		if o == "writable-cgroups" || strings.HasPrefix(o, "writable-cgroups=") || strings.HasPrefix(o, "writable-cgroups:") {
			return true
		}
	}
	return false
}

// remappedRoot is <real data root>/<uid>.<gid> for the remap account, ""
// when it cannot be told (no account, no ranges yet). For a spec that
// resolves to root it is <data-root>/0.0 (R9).
func remappedRoot(ctx context.Context, env *checks.Env, root string) string {
	da := facts.DockerAccountOf(ctx, env)
	switch {
	case errors.Is(da.Err, remap.ErrRoot):
		return path.Join(root, remap.RemappedDir(0, 0))
	case da.Err != nil:
		return ""
	}
	t, _ := facts.RemappedRootOf(env, root, da.Account)
	return t
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// containerName reads the container's name from config.v2.json, "" when
// it cannot.
func containerName(env *checks.Env, dir string) string {
	b, err := env.Host.ReadFile(path.Join(dir, "config.v2.json"))
	if err != nil {
		return ""
	}
	var c struct{ Name string }
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return strings.TrimPrefix(c.Name, "/")
}

// remappedDir matches the <uid>.<gid> directories dockerd makes under the
// data root.
var remappedDir = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

func checkDataRoot(ctx context.Context, env *checks.Env) checks.Result {
	dr := facts.DockerDataRootRealOf(env)
	root, rootSrc := dr.Real, dr.Source
	set := facts.DockerRemapSettingOf(env)
	r := checks.Result{}.With("data_root", root).With("data_root_source", rootSrc)
	if dr.Real != dr.Configured {
		r = r.With("data_root_configured", dr.Configured)
		rootSrc += ", a link to " + dr.Real
	}
	if dr.Err != nil {
		return withEvidence(r, checks.Failf(fmt.Sprintf("make %s a directory, or point data-root elsewhere", dr.Configured),
			"the data root %s (%s) does not resolve to a directory: %v; dockerd refuses to start (`Unable to get the full path to root (%s)`)", dr.Configured, dr.Source, dr.Err, dr.Configured))
	}

	// The remapped root this host would use, when the account has ranges.
	target := remappedRoot(ctx, env, root)
	ents, err := env.Host.ReadDir(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r = r.With("exists", false)
		return withEvidence(r, checks.Passf("%s (%s) does not exist yet: there are no images, containers or volumes to lose", root, rootSrc))
	case err != nil:
		return withEvidence(r, checks.Warnf(fmt.Sprintf("make %s a directory dockerd can use, or point data-root elsewhere", root),
			"cannot list the data root %s (%s): %v", root, rootSrc, err))
	}
	var existing []string
	for _, e := range ents {
		if e.IsDir() && remappedDir.MatchString(e.Name()) {
			existing = append(existing, path.Join(root, e.Name()))
		}
	}
	r = r.With("remapped_roots", existing)
	if target != "" {
		r = r.With("remapped_root", target)
	}
	c := content(env, root)
	r = r.With("images", c.images).With("volumes", c.volumes).With("containers", c.containers)

	active := set.Value != "" && target != "" && contains(existing, target)
	if active {
		msg := fmt.Sprintf("userns-remap is on (%s) and dockerd keeps its data in %s", set.Where, target)
		if !c.empty() {
			msg += fmt.Sprintf("; the %s made before remap stay in %s and are not visible while remap is on", c, root)
		}
		return withEvidence(r, checks.Passf("%s", msg))
	}
	// Remapped roots made with other ids (another remap user, or ranges
	// read in another order, R17) vanish from view just the same.
	var others []string
	if target != "" {
		for _, e := range existing {
			if oc := content(env, e); e != target && !oc.empty() {
				others = append(others, fmt.Sprintf("%s holds %s", e, oc))
			}
		}
	}
	if len(others) > 0 {
		r = r.With("other_remapped_roots", others)
	}
	if c.empty() && len(others) > 0 {
		state := "once userns-remap is enabled"
		if set.Value != "" {
			state = fmt.Sprintf("with userns-remap %q (%s)", set.Value, set.Where)
		}
		why := fmt.Sprintf("the remapped root's ids as dockerd %s reads the ranges now", dockerdRelease(ctx, env))
		remedy := "if that data is still needed, give the remap user the ranges it had (the start of its first /etc/subuid and /etc/subgid ranges are the directory's <uid>.<gid>); else `docker save` what must survive from a dockerd running with the old ranges"
		if errors.Is(facts.DockerAccountOf(ctx, env).Err, remap.ErrRoot) {
			why = "userns-remap resolves to root, whose pair is 0:0"
			remedy = "set userns-remap back to the user whose ranges made that directory (`" + applyDocker + " --user default` for dockremap)"
		}
		return withEvidence(r, checks.Warnf(remedy,
			"%s; %s dockerd uses %s (%s), so that data is out of view", strings.Join(others, "; "), state, target, why))
	}
	if c.empty() {
		where := "<data-root>/<uid>.<gid>"
		if target != "" {
			where = target
		}
		return withEvidence(r, checks.Passf("%s (%s) holds no images, containers or volumes: nothing vanishes when dockerd moves to %s", root, rootSrc, where))
	}
	newRoot := "<data-root>/<uid>.<gid> (uid and gid: the first subordinate IDs of the remap user)"
	if target != "" {
		newRoot = target
	}
	state := "once userns-remap is enabled"
	if set.Value != "" {
		state = fmt.Sprintf("when dockerd restarts with userns-remap %q (%s)", set.Value, set.Where)
	}
	return withEvidence(r, checks.Warnf(
		"before `"+applyDocker+"`, save what must survive: `docker save -o images.tar IMAGE...` and back up each volume (`docker run --rm -v VOLUME:/v -v \"$PWD\":/b busybox tar -C /v -cf /b/VOLUME.tar .`); after the restart, `docker load -i images.tar`, restore the volumes, recreate the containers and networks, and rejoin a swarm",
		"%s (%s) holds %s that vanish from view %s: dockerd then keeps everything under %s (images, containers, volumes, networks, plugins, swarm state, build cache), shows the old ones again only if remap is turned off, and makes %s itself group-owned by the remapped root's gid (mode 0710)",
		root, rootSrc, c, state, newRoot, root))
}

// dockerdRelease is "27.5.1", or "(version unknown)".
func dockerdRelease(ctx context.Context, env *checks.Env) string {
	if p := facts.VersionOf(ctx, env, versions.Dockerd); p.Known() {
		return p.Version.String()
	}
	return "(version unknown)"
}

// dataContent is what dockerd would show from a data root.
type dataContent struct{ images, containers, volumes int }

func (c dataContent) empty() bool { return c.images+c.containers+c.volumes == 0 }

// String is "2 images, 1 container and 0 volumes".
func (c dataContent) String() string {
	return fmt.Sprintf("%s, %s and %s", checks.Count(c.images, "image"), checks.Count(c.containers, "container"), checks.Count(c.volumes, "volume"))
}

// content counts the images, containers and volumes dockerd would show
// from root.
func content(env *checks.Env, root string) dataContent {
	var c dataContent
	imgs, _ := env.Host.Glob(path.Join(root, "image/*/imagedb/content/sha256/*"))
	c.images = len(imgs)
	ctrs, _ := env.Host.Glob(path.Join(root, "containers/*/hostconfig.json"))
	c.containers = len(ctrs)
	if ents, err := env.Host.ReadDir(path.Join(root, "volumes")); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				c.volumes++
			}
		}
	}
	return c
}

func contains(xs []string, x string) bool {
	i := sort.SearchStrings(xs, x)
	return i < len(xs) && xs[i] == x
}

// withEvidence returns res carrying the evidence gathered in ev.
func withEvidence(ev, res checks.Result) checks.Result {
	for k, v := range ev.Evidence {
		res = res.With(k, v)
	}
	return res
}

// count is "2 of 5 containers" or "1 of 1 container".
func count(n, total int) string {
	return fmt.Sprintf("%d of %s", n, checks.Count(total, "container"))
}
