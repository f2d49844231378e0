package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/remap"
)

func checkDaemonJSON(ctx context.Context, env *checks.Env) checks.Result {
	d := facts.DockerConfigOf(env)
	ev := func(r checks.Result) checks.Result {
		r = r.With("path", d.Path).With("source", d.Source).With("exists", d.Exists)
		if len(d.Others) > 0 {
			var o []string
			for _, x := range d.Others {
				o = append(o, x.Kind+": "+x.Path)
			}
			r = r.With("not_in_effect", o)
		}
		return r
	}
	p := d.Path
	var readErr *fs.PathError
	switch {
	case errors.As(d.Err, &readErr):
		remedy := fmt.Sprintf("make %s a readable regular file holding one JSON object", p)
		if strings.Contains(d.Err.Error(), "is a directory") {
			remedy = fmt.Sprintf("move the directory away and put a JSON object in its place: `mv %s %s.dir && echo '{}' > %s`", p, p, p)
		}
		return ev(checks.Failf(remedy, "%s (%s) cannot be read: %v; dockerd refuses to start with it", p, d.Source, d.Err))
	case d.Err != nil:
		return ev(checks.Failf(syntaxRemedy(d.Path, d.Err),
			"%v: dockerd refuses to start with this file (%s)", d.Err, d.Source))
	case !d.Exists && d.ConfigFlag != nil:
		return ev(checks.Warnf(fmt.Sprintf("run `usernsctl apply --target docker`, which creates it, or remove `%s` from %s", d.ConfigFlag.Text, d.ConfigFlag.Where()),
			"%s does not exist, but %s names it: dockerd refuses to start without it", p, d.Source))
	}

	var notes, warns []string
	var remedies []string
	if def := other(d, "default"); def != "" {
		warns = append(warns, fmt.Sprintf("%s exists but dockerd does not read it: %s chooses %s, so edits to %s have no effect", def, d.Source, p, def))
		remedies = append(remedies, fmt.Sprintf("move what %s should say into %s, then remove %s", def, p, def))
	}
	if snap := other(d, "snap"); snap != "" {
		if du := facts.DockerUnitOf(env); du.Unit == nil && !du.InitScript {
			warns = append(warns, fmt.Sprintf("Docker here runs from the snap, which reads %s, not %s (no docker.service found)", snap, p))
			remedies = append(remedies, fmt.Sprintf("usernsctl configures the system dockerd only: for snap Docker set userns-remap in %s by hand and run `snap restart docker`", snap))
		} else {
			notes = append(notes, fmt.Sprintf("snap Docker's %s is not the file in effect", snap))
		}
	}
	for _, o := range d.Others {
		if o.Kind == "rootless" {
			notes = append(notes, fmt.Sprintf("%s belongs to a rootless Docker, not to this dockerd (userns-remap does not apply to rootless Docker)", o.Path))
		}
	}

	if !d.Exists {
		r := checks.Passf("%s does not exist (%s): dockerd runs with its defaults; usernsctl apply will create it", p, d.Source)
		return ev(finish(r, notes, warns, remedies))
	}
	f := d.File
	for _, dup := range f.Duplicates {
		warns = append(warns, fmt.Sprintf("%q is given again at line %d (first at line %d): dockerd silently uses the last one", dup.Path, dup.Line, dup.First))
		remedies = append(remedies, fmt.Sprintf("keep one %q in %s", dup.Path, p))
	}
	if f.BOM {
		if v := facts.VersionOf(ctx, env, versions.Dockerd); v.Known() && !v.Version.AtLeast("23.0") {
			warns = append(warns, fmt.Sprintf("%s starts with a UTF-8 byte order mark, which dockerd %s refuses (23.0 and later skip it)", p, v.Version))
			remedies = append(remedies, fmt.Sprintf("remove the byte order mark: `sed -i '1s/^\\xEF\\xBB\\xBF//' %s`", p))
		} else {
			notes = append(notes, "the file starts with a UTF-8 byte order mark, which dockerd 23.0 and later skip")
		}
	}
	keys := make([]string, 0, len(f.Members))
	for _, m := range f.Members {
		keys = append(keys, m.Key)
	}
	var r checks.Result
	switch {
	case f.Empty:
		r = checks.Passf("%s (%s) is empty: dockerd reads it as {}", p, d.Source)
	case len(keys) == 0:
		r = checks.Passf("%s (%s) is valid JSON with no keys", p, d.Source)
	default:
		r = checks.Passf("%s (%s) is valid JSON with %s: %s", p, d.Source, checks.Count(len(keys), "key"), strings.Join(keys, ", "))
	}
	return ev(finish(r, notes, warns, remedies)).With("keys", keys)
}

// finish turns a passing result into a warning when there are warnings,
// and appends notes to the message.
func finish(r checks.Result, notes, warns, remedies []string) checks.Result {
	if len(warns) > 0 {
		r.Status = checks.Warn
		r.Message = strings.Join(warns, "; ") + " — " + r.Message
		r.Remedy = strings.Join(remedies, "; ")
	}
	if len(notes) > 0 {
		r.Message += " (note: " + strings.Join(notes, "; ") + ")"
	}
	return r
}

func other(d *facts.DockerConfig, kind string) string {
	for _, o := range d.Others {
		if o.Kind == kind {
			return o.Path
		}
	}
	return ""
}

// syntaxRemedy names the place to edit and how to confirm the fix.
func syntaxRemedy(p string, err error) string {
	fix := fmt.Sprintf("fix %s", p)
	if se, ok := errs.AsInput(err); ok && se.Line > 0 {
		fix = fmt.Sprintf("edit %s at line %d, column %d", p, se.Line, se.Column)
		if se.Fix != "" {
			fix += " (" + se.Fix + ")"
		}
	}
	return fix + fmt.Sprintf("; then confirm with `python3 -m json.tool %s` or, with Docker 23+, `dockerd --validate --config-file %s`", p, p)
}

const applyDocker = "usernsctl apply --target docker"

func checkUsernsRemap(ctx context.Context, env *checks.Env) checks.Result {
	set := facts.DockerRemapSettingOf(env)
	if set.Err != nil {
		if d := facts.DockerConfigOf(env); d.RemapErr != nil {
			return checks.Failf(`set "userns-remap" to a string: "default", "USER", "USER:GROUP", "UID" or "UID:GID"`,
				"%v: dockerd refuses to start with it", d.RemapErr)
		}
		return checks.Skipf("daemon.json cannot be read, so userns-remap is unknown (see docker.daemon_json): %v", set.Err)
	}
	dr := facts.DockerRemapOf(env)
	spec, source, err := dr.Spec, dr.Source, dr.Err
	where := source
	if errors.Is(err, remap.ErrRoot) {
		return checks.Failf(fmt.Sprintf(`set userns-remap to "default" (user dockremap) or an unprivileged user instead (%s)`, where),
			"%v (%s)", err, where).With("spec", spec.Raw).With("source", source)
	}
	if err != nil {
		return checks.Failf(fmt.Sprintf(`correct userns-remap (%s) to one of "default", USER, USER:GROUP, UID or UID:GID`, where),
			"%v (%s): dockerd refuses to start with it", err, where).With("source", source)
	}
	acc := facts.AccountsOf(env)
	if acc.Err != nil {
		return checks.Warnf("make /etc/passwd and /etc/group readable regular files",
			"cannot resolve userns-remap %q (%s): %v", spec.Raw, where, acc.Err).With("spec", spec.Raw).With("source", source)
	}
	a, err := spec.Resolve(acc.Users, acc.Groups)
	ev := func(r checks.Result) checks.Result {
		return r.With("spec", spec.Raw).With("source", source).With("configured", set.Value).
			With("user", a.User).With("uid", a.UID).With("user_exists", a.Exists).
			With("group", a.Group).With("gid", a.GID).With("group_exists", a.GroupExists).
			With("subid_keys", a.SubIDKeys())
	}
	if err != nil {
		return ev(checks.Failf(fmt.Sprintf(`set userns-remap to "default" (user dockremap) or an unprivileged user instead (%s)`, where), "%v (%s)", err, where))
	}
	nss := "dockerd also asks `getent`, so an LDAP or SSSD account would do: if `getent passwd` knows it, ignore this with --ignore docker.userns_remap"
	if !a.Exists && !a.Created {
		if spec.UID >= 0 {
			return ev(checks.Failf(fmt.Sprintf("create the account: `useradd --system --no-create-home --shell /usr/sbin/nologin --uid %d remap%d`, or name an existing user", spec.UID, spec.UID),
				"userns-remap %q (%s) names uid %d, which no account in %s has: dockerd stops with `Uid %d has no entry in /etc/passwd`; %s",
				spec.Raw, where, spec.UID, facts.PasswdFile, spec.UID, nss))
		}
		return ev(checks.Failf(fmt.Sprintf("useradd --system --no-create-home --shell /usr/sbin/nologin %s", spec.User),
			"userns-remap %q (%s) names user %q, which is not in %s: dockerd stops with `Error during uid lookup for %q`; only \"default\" makes dockerd create its user; %s",
			spec.Raw, where, spec.User, facts.PasswdFile, spec.User, nss))
	}
	if !a.GroupExists && !a.Created {
		remedy := fmt.Sprintf("groupadd --system %s", a.Group)
		switch {
		case spec.GID >= 0:
			remedy = fmt.Sprintf("groupadd --system --gid %d remap%d, or name an existing group", spec.GID, spec.GID)
		case spec.Group == "" && spec.UID >= 0:
			remedy = fmt.Sprintf("groupadd --system --gid %d %s, or add a group to userns-remap (%d:GID)", spec.UID, a.User, spec.UID)
		}
		return ev(checks.Failf(remedy, "userns-remap %q (%s): dockerd looks up %s, which is not in %s, and stops at start",
			spec.Raw, where, spec.WantGroup(), facts.GroupFile))
	}

	account := fmt.Sprintf("user %s (uid %d), group %s (gid %d)", a.User, a.UID, a.Group, a.GID)
	if a.Created {
		account = fmt.Sprintf("user and group %s, which do not exist yet: dockerd creates them at start, and so does usernsctl apply", remap.DefaultUser)
	}
	lookup := fmt.Sprintf("subordinate IDs are looked up by %s in /etc/subuid and /etc/subgid", strings.Join(quoteKeys(a.SubIDKeys()), " or "))
	switch {
	case set.Value == "":
		remedy := applyDocker
		if env.User != "" {
			remedy += " --user " + env.User
		}
		return ev(checks.Warnf(remedy, "userns-remap is not enabled: %s would set %q (%s) → %s; %s",
			applyDocker, spec.Raw, source, account, lookup))
	case env.User != "" && env.User != set.Value:
		return ev(checks.Warnf(applyDocker+" --user "+env.User,
			"userns-remap is %q (%s) but --user asks for %q → %s: apply would change it, and the data root with it",
			set.Value, set.Where, env.User, account))
	}
	return ev(checks.Passf("userns-remap %q (%s) → %s; %s", spec.Raw, source, account, lookup))
}

func quoteKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%q", k)
	}
	return out
}
