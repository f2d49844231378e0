package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/daemonjson"
	"github.com/usernsctl/usernsctl/config/systemd"
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
	var fails, warns, remedies, notes []string
	r := checks.Result{}
	if du.Unit != nil {
		r = r.With("unit", du.Unit.Path).With("drop_ins", du.Unit.DropIns)
		if du.Unit.Masked {
			warns = append(warns, fmt.Sprintf("%s is masked (empty or a link to /dev/null): systemd will not start dockerd", du.Unit.Path))
			remedies = append(remedies, "systemctl unmask docker.service")
		}
	}
	var flagTexts []string
	for _, f := range du.Flags {
		flagTexts = append(flagTexts, f.Text+" @ "+f.Where())
	}
	r = r.With("flags", flagTexts)

	// Settings systemd refuses or that stop the unit.
	if n := len(du.ExecStarts); n > 1 && !oneshot(du.Unit) {
		var at []string
		for _, e := range du.ExecStarts {
			at = append(at, e.Where())
		}
		fails = append(fails, fmt.Sprintf("docker.service has %d ExecStart= in effect (%s): systemd refuses to start a service with more than one (`Service has more than one ExecStart= setting`)", n, strings.Join(at, ", ")))
		last := du.ExecStarts[n-1]
		remedies = append(remedies, fmt.Sprintf("put an empty `ExecStart=` line before the ExecStart= at %s, then `systemctl daemon-reload`", last.Where()))
	}
	for _, p := range du.Problems {
		if p.Fatal {
			fails = append(fails, p.String())
			remedies = append(remedies, fmt.Sprintf("fix %s line %d, then `systemctl daemon-reload`", p.File, p.Line))
		}
	}

	// Flags that clash with daemon.json (field case 13).
	d, skip := config(env)
	var conflicts []conflict
	if skip == nil && d.File != nil {
		dirs := map[string]daemonjson.Directive{}
		for _, dv := range d.File.Directives() {
			dirs[dv.Key] = dv
		}
		seen := map[string]bool{}
		for _, f := range du.Flags {
			key, ok := daemonjson.FlagKey(f.Name)
			if !ok || seen[key] {
				continue
			}
			if dv, in := dirs[key]; in {
				seen[key] = true
				conflicts = append(conflicts, conflict{key: key, flag: f, line: dv.Line})
			}
		}
	} else if skip != nil {
		notes = append(notes, "daemon.json cannot be read, so flags were not compared with it (see docker.daemon_json)")
	}
	if len(conflicts) > 0 {
		var parts []string
		for _, c := range conflicts {
			parts = append(parts, fmt.Sprintf("%s: flag `%s` (%s) and %s line %d", c.key, c.flag.Text, c.flag.Where(), d.Path, c.line))
			remedies = append(remedies, fmt.Sprintf("remove `%s` from %s, or %q from %s", c.flag.Text, c.flag.Where(), c.key, d.Path))
		}
		fails = append(fails, "dockerd refuses to start (`the following directives are specified both as a flag and in the configuration file`): "+strings.Join(parts, "; "))
		var keys []string
		for _, c := range conflicts {
			keys = append(keys, c.key)
		}
		r = r.With("conflicts", keys)
	}

	// userns-remap as a flag: it works, but apply cannot own it.
	if f, ok := du.Flag("userns-remap"); ok && !hasConflict(conflicts, "userns-remap") {
		warns = append(warns, fmt.Sprintf("userns-remap is a dockerd flag (`%s`, %s): usernsctl apply sets it in daemon.json and refuses while the flag is there, since dockerd would then refuse both", f.Text, f.Where()))
		remedies = append(remedies, fmt.Sprintf("move it into daemon.json: remove `%s` from %s, `systemctl daemon-reload`, then `%s --user %s`", f.Text, f.Where(), applyDocker, f.Value))
		r = r.With("remap_flag", f.Text+" @ "+f.Where())
	}

	for _, v := range du.Unread {
		notes = append(notes, fmt.Sprintf("%s sets %s at line %d, but docker.service does not pass it to dockerd: those flags are ignored", v.File, v.Name, v.Line))
	}
	if du.InitScript {
		notes = append(notes, "no docker.service: flags taken from "+strings.Join(optionFileNames(du), " and ")+", which the init script passes to dockerd")
	}

	switch {
	case len(fails) > 0:
		r.Status, r.Message = checks.Fail, strings.Join(append(fails, warns...), "; ")
		r.Remedy = strings.Join(remedies, "; ")
	case len(warns) > 0:
		r.Status, r.Message = checks.Warn, strings.Join(warns, "; ")
		r.Remedy = strings.Join(remedies, "; ")
	case du.Unit == nil && !du.InitScript:
		r.Status = checks.Pass
		r.Message = fmt.Sprintf("no docker.service found (%s): no dockerd flags to compare with daemon.json", strings.Join(du.Searched, ", "))
	default:
		r.Status = checks.Pass
		src := "the option files"
		if du.Unit != nil {
			src = du.Unit.Path
			if len(du.Unit.DropIns) > 0 {
				src += " and " + strings.Join(du.Unit.DropIns, ", ")
			}
		}
		r.Message = fmt.Sprintf("none of dockerd's %s (%s) is also set in daemon.json", checks.Count(len(du.Flags), "flag"), src)
	}
	if len(notes) > 0 {
		r.Message += " (note: " + strings.Join(notes, "; ") + ")"
	}
	return r
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
