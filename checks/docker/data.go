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
)

// hostConfig is the part of a container's hostconfig.json that userns-remap
// cares about (moby's container.HostConfig field names).
type hostConfig struct {
	NetworkMode string
	PidMode     string
	Privileged  bool
	UsernsMode  string
}

// hostUser is one container that a remapped dockerd would refuse.
type hostUser struct {
	id, name, root string
	uses           []string
}

func checkHostNamespaces(ctx context.Context, env *checks.Env) checks.Result {
	root, rootSrc := facts.DockerDataRootOf(env)
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
		if len(uses) == 0 {
			continue
		}
		id := path.Base(dir)
		found = append(found, hostUser{id: id, name: containerName(env, dir), root: croot, uses: uses})
	}
	r := checks.Result{}.With("data_root", root).With("containers", total)
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
	var list, ids []string
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
		list = append(list, who+": "+strings.Join(c.uses, ", "))
	}
	_, when := remapState(env)
	r.Status = checks.Warn
	var errs []string
	for _, e := range []struct{ use, text string }{
		{"--net=host", "cannot share the host's network namespace when user namespaces are enabled"},
		{"--pid=host", "cannot share the host PID namespace when user namespaces are enabled"},
		{"--privileged", "privileged mode is incompatible with user namespaces"},
	} {
		if used[e.use] {
			errs = append(errs, "`"+e.text+"`")
		}
	}
	r.Message = fmt.Sprintf("%s under %s use host namespaces or privileged mode: %s. %s dockerd refuses to start such containers unless they run with --userns=host (%s)",
		count(len(found), total), root, strings.Join(list, "; "), capitalize(when), strings.Join(errs, ", "))
	r.Remedy = "recreate these containers with `--userns=host` added to their `docker run` options (compose: `userns_mode: host`); keep them as they are only if they do not need host namespaces"
	return r.With("host_namespace_containers", ids)
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
	root, rootSrc := facts.DockerDataRootOf(env)
	set := facts.DockerRemapSettingOf(env)
	r := checks.Result{}.With("data_root", root).With("data_root_source", rootSrc)

	// The remapped root this host would use, when the account has ranges.
	var target string
	if dr := facts.DockerRemapOf(env); dr.Err == nil {
		if acc := facts.AccountsOf(env); acc.Err == nil {
			if a, err := dr.Spec.Resolve(acc.Users, acc.Groups); err == nil {
				target, _ = facts.RemappedRootOf(env, root, a)
			}
		}
	}
	ents, err := env.Host.ReadDir(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r = r.With("exists", false)
		return withEvidence(r, checks.Passf("%s (%s) does not exist yet: there are no images or volumes to lose", root, rootSrc))
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
	images, volumes := content(env, root)
	r = r.With("images", images).With("volumes", volumes)

	active := set.Value != "" && target != "" && contains(existing, target)
	if active {
		msg := fmt.Sprintf("userns-remap is on (%s) and dockerd keeps its data in %s", set.Where, target)
		if images+volumes > 0 {
			msg += fmt.Sprintf("; the %s and %s made before remap stay in %s and are not visible while remap is on", checks.Count(images, "image"), checks.Count(volumes, "volume"), root)
		}
		return withEvidence(r, checks.Passf("%s", msg))
	}
	if images+volumes == 0 {
		where := "<data-root>/<uid>.<gid>"
		if target != "" {
			where = target
		}
		return withEvidence(r, checks.Passf("%s (%s) holds no images or volumes: nothing vanishes when dockerd moves to %s", root, rootSrc, where))
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
		"before `"+applyDocker+"`, save what must survive: `docker save -o images.tar IMAGE...` and back up each volume (`docker run --rm -v VOLUME:/v -v \"$PWD\":/b busybox tar -C /v -cf /b/VOLUME.tar .`); after the restart, `docker load -i images.tar` and restore the volumes",
		"%s (%s) holds %s and %s that vanish from view %s: dockerd then uses %s, and shows the old ones again only if remap is turned off",
		root, rootSrc, checks.Count(images, "image"), checks.Count(volumes, "volume"), state, newRoot))
}

// content counts the images and volumes dockerd would show from root.
func content(env *checks.Env, root string) (images, volumes int) {
	imgs, _ := env.Host.Glob(path.Join(root, "image/*/imagedb/content/sha256/*"))
	images = len(imgs)
	if ents, err := env.Host.ReadDir(path.Join(root, "volumes")); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				volumes++
			}
		}
	}
	return images, volumes
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
