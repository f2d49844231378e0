package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/daemonjson"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/rules"
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
	dv := facts.VersionOf(ctx, env, versions.Dockerd)
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
			"%v: %s refuses to start with this file (%s)%s", d.Err, dockerdName(dv), d.Source, syntaxNote(d, dv)))
	case !d.Exists && d.ConfigFlag != nil:
		// R31: an explicit --config-file must exist (moby cmd/dockerd
		// loadDaemonCliConfig, flags.Changed("config-file")).
		return ev(checks.Failf(fmt.Sprintf("run `usernsctl apply --target docker`, which creates it, or create it (`echo '{}' > %s`), or remove `%s` from %s", p, d.ConfigFlag.Text, d.ConfigFlag.Where()),
			"%s does not exist, but %s names it: dockerd refuses to start (`unable to configure the Docker daemon with file %s: open %s: no such file or directory`)", p, d.Source, p, p))
	}

	var notes, warns, fails []string
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
	switch {
	case f.BOM:
		notes = append(notes, fmt.Sprintf("the file starts with a UTF-8 byte order mark, which dockerd %s and later skip%s", rules.DockerDaemonJSONDecode, assumedNote(d)))
	case f.Encoding != "":
		notes = append(notes, fmt.Sprintf("the file is %s with a byte order mark, which dockerd %s and later decode%s", f.Encoding, rules.DockerDaemonJSONDecode, assumedNote(d)))
	}
	if t := f.Trailing; t != nil {
		// R29: dockerd before 23 decodes the first JSON value only.
		warns = append(warns, fmt.Sprintf("line %d, column %d: data follows the object (`%s`), which %s ignores: none of it is in effect, and dockerd %s and later refuse the file",
			t.Line, t.Col, t.Text, dockerdName(dv), rules.DockerDaemonJSONDecode))
		remedies = append(remedies, fmt.Sprintf("merge what follows line %d column %d into the first object of %s (or delete it); then confirm with `python3 -m json.tool %s`", t.Line, t.Col, p, p))
	}
	if m, ok := f.Lookup("graph"); ok {
		// The deprecated key: refused from 23.0.
		switch refused, known := facts.DockerdAtLeast(env, rules.DockerGraphRefused); {
		case refused:
			text := "`the \"graph\" config file option is deprecated; use \"data-root\" instead`"
			if unknown, _ := facts.DockerdAtLeast(env, rules.DockerGraphUnknown); unknown {
				text = "`the following directives don't match any configuration option: graph`"
			}
			if !known {
				text += fmt.Sprintf(" (dockerd's version is unknown: dockerd %s and later assumed)", rules.DockerGraphRefused)
			}
			fails = append(fails, fmt.Sprintf("%q at line %d: %s refuses to start: %s", "graph", m.Line, dockerdName(dv), text))
			remedies = append(remedies, fmt.Sprintf(`rename "graph" to "data-root" in %s line %d`, p, m.Line))
		case f.Values["data-root"] != nil:
			fails = append(fails, fmt.Sprintf(`both "graph" (line %d) and "data-root" are set: %s refuses to start (`+"`cannot specify both \"graph\" and \"data-root\" config file options`)", m.Line, dockerdName(dv)))
			remedies = append(remedies, fmt.Sprintf(`delete "graph" from %s line %d`, p, m.Line))
		default:
			notes = append(notes, fmt.Sprintf(`"graph" (line %d) sets the data root; dockerd %s and later refuse the key: rename it to "data-root" before upgrading`, m.Line, rules.DockerGraphRefused))
		}
	}
	for _, m := range f.Members {
		// R28: dockerd looks each key up as a flag name, exactly (no
		// normalization), and refuses the ones it does not find.
		if want, ok := misspelled(m.Key); ok {
			fails = append(fails, fmt.Sprintf("%q at line %d is not %q: %s refuses to start (`the following directives don't match any configuration option: %s`)", m.Key, m.Line, want, dockerdName(dv), m.Key))
			remedies = append(remedies, fmt.Sprintf("rename %q to %q in %s line %d", m.Key, want, p, m.Line))
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
		if d.SyntaxAssumed {
			notes = append(notes, fmt.Sprintf("dockerd's version is unknown: dockerd before %s refuses an empty file (`EOF`)", rules.DockerDaemonJSONDecode))
		}
	case len(keys) == 0:
		r = checks.Passf("%s (%s) is valid JSON with no keys", p, d.Source)
	default:
		r = checks.Passf("%s (%s) is valid JSON with %s: %s", p, d.Source, checks.Count(len(keys), "key"), strings.Join(keys, ", "))
	}
	if len(fails) > 0 {
		r.Status, r.Message, r.Remedy = checks.Fail, strings.Join(append(fails, warns...), "; "), strings.Join(remedies, "; ")
		if len(notes) > 0 {
			r.Message += " (note: " + strings.Join(notes, "; ") + ")"
		}
		return ev(r).With("keys", keys)
	}
	return ev(finish(r, notes, warns, remedies)).With("keys", keys)
}

// dockerdName is "dockerd 20.10.24" or "dockerd" when its version is
// unknown.
func dockerdName(p facts.Program) string {
	if p.Known() {
		return "dockerd " + p.Version.String()
	}
	return "dockerd"
}

// syntaxNote says which dockerd's syntax a file was read in, when that
// matters: the release's, or the current one assumed.
func syntaxNote(d *facts.DockerConfig, p facts.Program) string {
	switch {
	case d.SyntaxAssumed:
		return fmt.Sprintf(" (dockerd's version is unknown: read as dockerd %s and later read it)", rules.DockerDaemonJSONDecode)
	}
	if se, ok := errs.AsInput(d.Err); ok {
		how := "decodes the whole file"
		if d.Syntax == daemonjson.FirstValue {
			how = "decodes the first JSON value of the file"
		}
		return fmt.Sprintf(": %s %s and says `unable to configure the Docker daemon with file %s: %s`", dockerdName(p), how, d.Path, se.Msg)
	}
	return ""
}

func assumedNote(d *facts.DockerConfig) string {
	if d.SyntaxAssumed {
		return fmt.Sprintf(" (dockerd's version is unknown; releases before %s refuse the file)", rules.DockerDaemonJSONDecode)
	}
	return ""
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
	return fix + fmt.Sprintf("; then confirm with `python3 -m json.tool %s` or, with dockerd %s and later, `dockerd --validate --config-file %s`", p, rules.DockerValidate, p)
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
	da := facts.DockerAccountOf(ctx, env)
	spec, source := da.Remap.Spec, da.Remap.Source
	where := source
	if da.Remap.Err != nil {
		return checks.Failf(fmt.Sprintf(`correct userns-remap (%s) to one of "default", USER, USER:GROUP, UID or UID:GID`, where),
			"%v (%s): dockerd refuses to start with it", da.Remap.Err, where).With("source", source)
	}
	if acc := facts.AccountsOf(env); acc.Err != nil {
		return checks.Warnf("make /etc/passwd and /etc/group readable regular files",
			"cannot resolve userns-remap %q (%s): %v", spec.Raw, where, acc.Err).With("spec", spec.Raw).With("source", source)
	}
	a := da.Account
	ev := func(r checks.Result) checks.Result {
		r = r.With("spec", spec.Raw).With("source", source).With("configured", set.Value).
			With("user", a.User).With("uid", a.UID).With("user_exists", a.Exists).
			With("group", a.Group).With("gid", a.GID).With("group_exists", a.GroupExists).
			With("subid_keys", a.SubIDKeys())
		var nss []string
		for _, l := range da.NSS {
			nss = append(nss, fmt.Sprintf("%s: found %v", l.Command(), l.Found))
		}
		if len(nss) > 0 {
			r = r.With("getent", nss)
		}
		return r
	}
	if !a.Exists && !a.Created {
		return ev(missingAccount(da, where))
	}
	if !a.GroupExists && !a.Created {
		return ev(missingGroup(da, where))
	}
	if errors.Is(da.Err, remap.ErrRoot) {
		// R9: no refusal, a silent fallback with side effects.
		return ev(checks.Warnf(fmt.Sprintf(`set userns-remap to "default" (user dockremap) or an unprivileged user instead (%s): `+"`%s --user default`", where, applyDocker),
			"userns-remap %q (%s) resolves to root: dockerd does not refuse it, but logs `User namespaces: root cannot be remapped with itself; user namespaces are OFF` and runs every container without a user namespace; userns-remap still counts as set, so dockerd moves its data root to <data-root>/%s (images, containers and volumes made before vanish from view) and still refuses --privileged, --net=host and --pid=host containers",
			spec.Raw, where, remap.RemappedDir(0, 0)))
	}

	account := fmt.Sprintf("user %s (uid %d), group %s (gid %d)", a.User, a.UID, a.Group, a.GID)
	if a.Created {
		account = fmt.Sprintf("user and group %s, which do not exist yet: dockerd creates them at start, and so does usernsctl apply", remap.DefaultUser)
	}
	for _, l := range da.NSS {
		if l.Found {
			account += fmt.Sprintf(" (%s found by `%s`: %s names %s)", l.DB, l.Command(), facts.NSSwitchFile, strings.Join(l.Source.Services, " "))
		}
	}
	lookup := fmt.Sprintf("subordinate IDs are looked up by %s in /etc/subuid and /etc/subgid", strings.Join(quoteKeys(a.SubIDKeys()), " or "))
	switch {
	case set.Value == "":
		remedy := applyDocker
		if env.User != "" {
			remedy += " --user " + env.User
		}
		off := "userns-remap is not enabled"
		if set.Null != "" {
			off = fmt.Sprintf("userns-remap is null (%s), which dockerd reads as unset: user namespaces are off", set.Null)
		}
		return ev(checks.Warnf(remedy, "%s: %s would set %q (%s) → %s; %s",
			off, applyDocker, spec.Raw, source, account, lookup))
	case env.User != "" && env.User != set.Value:
		return ev(checks.Warnf(applyDocker+" --user "+env.User,
			"userns-remap is %q (%s) but --user asks for %q → %s: apply would change it, and the data root with it",
			set.Value, set.Where, env.User, account))
	}
	return ev(checks.Passf("userns-remap %q (%s) → %s; %s", spec.Raw, source, account, lookup))
}

// missingAccount is a remap user dockerd does not find (R3, R5): a
// refusal at start, unless getent could not be asked (R8).
func missingAccount(da *facts.DockerAccount, where string) checks.Result {
	spec := da.Remap.Spec
	var remedy, msg string
	if spec.UID >= 0 {
		remedy = fmt.Sprintf("create the account: `useradd --system --no-create-home --shell /usr/sbin/nologin --uid %d remap%d`, or name an existing user", spec.UID, spec.UID)
		msg = fmt.Sprintf("userns-remap %q (%s) names uid %d, which no account in %s has: dockerd stops with `Uid %d has no entry in /etc/passwd`",
			spec.Raw, where, spec.UID, facts.PasswdFile, spec.UID)
	} else {
		remedy = fmt.Sprintf("useradd --system --no-create-home --shell /usr/sbin/nologin %s", spec.User)
		msg = fmt.Sprintf("userns-remap %q (%s) names user %q, which is not in %s: dockerd stops with `Error during uid lookup for %q`; only \"default\" makes dockerd create its user",
			spec.Raw, where, spec.User, facts.PasswdFile, spec.User)
	}
	return nssVerdict(da, "passwd", msg, remedy)
}

// missingGroup is a group dockerd does not find (R4, R6, R7).
func missingGroup(da *facts.DockerAccount, where string) checks.Result {
	spec, a := da.Remap.Spec, da.Account
	remedy := fmt.Sprintf("groupadd --system %s", a.Group)
	symptom := fmt.Sprintf("`Error during gid lookup for %q`", spec.User)
	switch {
	case spec.GID >= 0:
		remedy = fmt.Sprintf("groupadd --system --gid %d remap%d, or name an existing group", spec.GID, spec.GID)
		symptom = fmt.Sprintf("`Gid %d has no entry in /etc/passwd` (sic)", spec.GID)
	case spec.Group != "":
		symptom = fmt.Sprintf("`Error during groupname lookup for %q`", spec.Group)
	case spec.UID >= 0:
		remedy = fmt.Sprintf("groupadd --system --gid %d %s, or add a group to userns-remap (%d:GID)", spec.UID, a.User, spec.UID)
		symptom = fmt.Sprintf("`Gid %d has no entry in /etc/group`", spec.UID)
	}
	msg := fmt.Sprintf("userns-remap %q (%s): dockerd looks up %s, which is not in %s, and stops at start with %s",
		spec.Raw, where, spec.WantGroup(), facts.GroupFile, symptom)
	return nssVerdict(da, "group", msg, remedy)
}

// nssVerdict fails a missing account or group, unless nsswitch.conf names
// other sources for db and getent could not be asked: dockerd asks it
// (R8), so that is a warning saying what would tell.
func nssVerdict(da *facts.DockerAccount, db, msg, remedy string) checks.Result {
	for _, l := range da.NSS {
		if l.DB != db {
			continue
		}
		if l.Err != nil {
			return checks.Warnf(fmt.Sprintf("run `%s` on the host: if it prints the entry, dockerd finds it and this is fine; if it prints nothing, %s", l.Command(), remedy),
				"%s, unless another source knows it: %s names more than the files, and dockerd then asks `%s`, which could not be asked here (%v)",
				msg, l.Source.Where(), l.Command(), l.Err)
		}
		return checks.Failf(remedy, "%s; `%s` finds nothing either (%s names %s)", msg, l.Command(), facts.NSSwitchFile, strings.Join(l.Source.Services, " "))
	}
	return checks.Failf(remedy, "%s", msg)
}

func quoteKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%q", k)
	}
	return out
}

// spelledKeys are the daemon.json keys usernsctl reads, which dockerd
// matches against its flag names exactly (moby daemon/config/config.go
// findConfigurationConflicts, flags.Lookup, v20.10.24 … docker-v29.7.2).
var spelledKeys = []string{"userns-remap", "data-root", "storage-driver", "default-runtime", "features", "runtimes"}

// misspelled reports the key a daemon.json key was meant to be when it
// differs from one of spelledKeys only in case, '_' for '-', dashes or
// spaces ("userns_remap", "Data-Root"): dockerd refuses it at start.
func misspelled(key string) (string, bool) {
	squash := func(s string) string {
		return strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(s))
	}
	for _, k := range spelledKeys {
		if key != k && squash(key) == squash(k) {
			return k, true
		}
	}
	return "", false
}
