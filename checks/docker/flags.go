package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/daemonjson"
	"github.com/usernsctl/usernsctl/config/systemd"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
)

// conflict is a directive given both as a dockerd flag and in daemon.json.
type conflict struct {
	key  string
	flag systemd.Flag
	line int
}

func checkFlagConflicts(ctx context.Context, env *checks.Env) checks.Result {
	du := facts.DockerUnitOf(env)
	if du.Err != nil {
		return checks.Failf("fix the file systemd cannot read (see the message), then `systemctl daemon-reload`",
			"%v: systemd cannot load docker.service, so dockerd does not start", du.Err)
	}
	var f checks.Findings
	r := unitFindings(du, &f)
	conflicts := flagConflicts(env, du, &f)
	if len(conflicts) > 0 {
		keys := make([]string, len(conflicts))
		for i, c := range conflicts {
			keys[i] = c.key
		}
		r = r.With("conflicts", keys)
	}
	// userns-remap as a flag: it works, but apply cannot own it.
	if fl, ok := du.Flag("userns-remap"); ok && !hasConflict(conflicts, "userns-remap") {
		f.Warn(fmt.Sprintf("userns-remap is a dockerd flag (`%s`, %s): usernsctl apply sets it in daemon.json and refuses while the flag is there, since dockerd would then refuse both", fl.Text, fl.Where()),
			fmt.Sprintf("move it into daemon.json: remove `%s` from %s, `systemctl daemon-reload`, then `%s --user %s`", fl.Text, fl.Where(), applyDocker, fl.Value))
		r = r.With("remap_flag", fl.Text+" @ "+fl.Where())
	}
	if fl, ok := du.Flag("graph"); ok {
		graphFlag(ctx, env, fl, &f)
	}
	for _, v := range du.Unread {
		f.Note(fmt.Sprintf("%s sets %s at line %d, but docker.service does not pass it to dockerd: those flags are ignored", v.File, v.Name, v.Line))
	}
	if du.InitScript {
		f.Note("no docker.service: flags taken from " + strings.Join(optionFileNames(du), " and ") + ", which the init script passes to dockerd")
	}
	return f.Result(r, flagsPass(du))
}

// unitFindings judges the unit itself: masked, more than one ExecStart=,
// lines systemd refuses. It returns the unit's evidence.
func unitFindings(du *facts.DockerUnit, f *checks.Findings) checks.Result {
	r := checks.Result{}
	if du.Unit != nil {
		r = r.With("unit", du.Unit.Path).With("drop_ins", du.Unit.DropIns)
		if du.Unit.Masked {
			f.Warn(fmt.Sprintf("%s is masked (empty or a link to /dev/null): systemd will not start dockerd", du.Unit.Path), "systemctl unmask docker.service")
		}
	}
	var flagTexts []string
	for _, fl := range du.Flags {
		flagTexts = append(flagTexts, fl.Text+" @ "+fl.Where())
	}
	r = r.With("flags", flagTexts)
	if n := len(du.ExecStarts); n > 1 && !oneshot(du.Unit) {
		var at []string
		for _, e := range du.ExecStarts {
			at = append(at, e.Where())
		}
		f.Fail(fmt.Sprintf("docker.service has %d ExecStart= in effect (%s): systemd refuses to start a service with more than one (`Service has more than one ExecStart= setting`)", n, strings.Join(at, ", ")),
			fmt.Sprintf("put an empty `ExecStart=` line before the ExecStart= at %s, then `systemctl daemon-reload`", du.ExecStarts[n-1].Where()))
	}
	for _, p := range du.Problems {
		if p.Fatal {
			f.Fail(p.String(), fmt.Sprintf("fix %s line %d, then `systemctl daemon-reload`", p.File, p.Line))
		}
	}
	return r
}

// flagConflicts finds directives given both as a dockerd flag and in
// daemon.json: dockerd refuses to start.
func flagConflicts(env *checks.Env, du *facts.DockerUnit, f *checks.Findings) []conflict {
	d, skip := config(env)
	if skip != nil {
		f.Note("daemon.json cannot be read, so flags were not compared with it (see docker.daemon_json)")
		return nil
	}
	if d.File == nil {
		return nil
	}
	dirs := map[string]daemonjson.Directive{}
	for _, dv := range d.File.Directives() {
		dirs[dv.Key] = dv
	}
	var conflicts []conflict
	seen := map[string]bool{}
	for _, fl := range du.Flags {
		key, ok := daemonjson.FlagKey(fl.Name)
		if !ok || seen[key] {
			continue
		}
		if dv, in := dirs[key]; in {
			seen[key] = true
			conflicts = append(conflicts, conflict{key: key, flag: fl, line: dv.Line})
		}
	}
	if len(conflicts) == 0 {
		return nil
	}
	var parts, remedies []string
	for _, c := range conflicts {
		parts = append(parts, fmt.Sprintf("%s: flag `%s` (%s) and %s line %d", c.key, c.flag.Text, c.flag.Where(), d.Path, c.line))
		remedies = append(remedies, fmt.Sprintf("remove `%s` from %s, or %q from %s", c.flag.Text, c.flag.Where(), c.key, d.Path))
	}
	f.Fail("dockerd refuses to start (`the following directives are specified both as a flag and in the configuration file`): "+strings.Join(parts, "; "),
		strings.Join(remedies, "; "))
	return conflicts
}

// flagsPass is the message when nothing clashes.
func flagsPass(du *facts.DockerUnit) string {
	if du.Unit == nil && !du.InitScript {
		return fmt.Sprintf("no docker.service found (%s): no dockerd flags to compare with daemon.json", strings.Join(du.Searched, ", "))
	}
	src := "the option files"
	if du.Unit != nil {
		src = du.Unit.Path
		if len(du.Unit.DropIns) > 0 {
			src += " and " + strings.Join(du.Unit.DropIns, ", ")
		}
	}
	return fmt.Sprintf("none of dockerd's %s (%s) is also set in daemon.json", checks.Count(len(du.Flags), "flag"), src)
}

func hasConflict(cs []conflict, key string) bool {
	for _, c := range cs {
		if c.key == key {
			return true
		}
	}
	return false
}

func oneshot(u *systemd.Unit) bool {
	if u == nil {
		return false
	}
	types := u.All("Service", "Type")
	return len(types) > 0 && types[len(types)-1].Value == "oneshot"
}

func optionFileNames(du *facts.DockerUnit) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range du.Flags {
		if f.Word.File != "" && !seen[f.Word.File] {
			seen[f.Word.File] = true
			out = append(out, f.Word.File)
		}
	}
	return out
}

// graphFlag judges -g/--graph: dockerd 23 refuses it in Validate (it sets
// the deprecated root), 24 and later no longer define the flag, so pflag
// stops dockerd before it reads anything.
func graphFlag(ctx context.Context, env *checks.Env, fl systemd.Flag, f *checks.Findings) {
	refused, known := facts.DockerdAtLeast(env, rules.DockerGraphRefused)
	if !refused {
		f.Note(fmt.Sprintf("`%s` (%s) sets the data root; dockerd %s and later refuse it: use --data-root before upgrading", fl.Text, fl.Where(), rules.DockerGraphRefused))
		return
	}
	text := "`the \"graph\" config file option is deprecated; use \"data-root\" instead`"
	if unknown, _ := facts.DockerdAtLeast(env, rules.DockerGraphUnknown); unknown {
		text = "`unknown shorthand flag: 'g' in -g`"
		if strings.HasPrefix(fl.Text, "--") {
			text = "`unknown flag: --graph`"
		}
	}
	if !known {
		text += fmt.Sprintf(" (dockerd's version is unknown: dockerd %s and later assumed)", rules.DockerGraphRefused)
	}
	f.Fail(fmt.Sprintf("`%s` (%s): %s refuses to start: %s", fl.Text, fl.Where(), dockerdName(facts.VersionOf(ctx, env, versions.Dockerd)), text),
		fmt.Sprintf("replace `%s` with `--data-root %s` in %s, then `systemctl daemon-reload`", fl.Text, fl.Value, fl.Where()))
}
