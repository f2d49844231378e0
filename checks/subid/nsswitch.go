package subid

import (
	"context"
	"fmt"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/remap"
)

func checkNSSwitch(ctx context.Context, env *checks.Env) checks.Result {
	ns := facts.NSSwitchOf(env)
	s := ns.Subid
	switch {
	case ns.Err != nil:
		return checks.Warnf(fmt.Sprintf("make %s a readable regular file", facts.NSSwitchFile),
			"cannot read %s: %v; libsubid would use the files", facts.NSSwitchFile, ns.Err)
	case !ns.Exists:
		return checks.Passf("no %s: getsubids and newuidmap read %s and %s", facts.NSSwitchFile, facts.SubUIDFile, facts.SubGIDFile).With("source", "files")
	case s.Note != "":
		return checks.Warnf(fmt.Sprintf("edit %s line %d to `subid: files` or to the intended module name, on a line of its own", facts.NSSwitchFile, s.Line),
			"%s:%d names %q for `subid:` but %s", facts.NSSwitchFile, s.Line, s.Service, s.Note).With("source", "files")
	case s.Files() && s.Line == 0:
		return checks.Passf("%s has no `subid:` line: getsubids and newuidmap read %s and %s", facts.NSSwitchFile, facts.SubUIDFile, facts.SubGIDFile).With("source", "files")
	case s.Files():
		return checks.Passf("%s:%d `subid: %s`: getsubids and newuidmap read %s and %s", facts.NSSwitchFile, s.Line, s.Service, facts.SubUIDFile, facts.SubGIDFile).With("source", "files")
	}

	msg := fmt.Sprintf("%s:%d `subid: %s`: getsubids, newuidmap and the kubelet (through getsubids) take subordinate ids from %s (SSSD, LDAP, IPA), not from %s and %s",
		facts.NSSwitchFile, s.Line, s.Service, s.Library(), facts.SubUIDFile, facts.SubGIDFile)
	remedy := fmt.Sprintf("manage the ranges in the directory %s serves, or set `subid: files` in %s to use the local files", s.Library(), facts.NSSwitchFile)
	r := checks.Result{Status: checks.Warn}.With("source", s.Module).With("library", s.Library())
	switch env.Target {
	case checks.Docker:
		msg += "; dockerd ignores this line and reads only the files, so the remap user needs lines there (see subid.remap_user)"
		remedy = applyDocker + " writes the remap user's range into the files dockerd reads"
	case checks.Kubernetes:
		for _, g := range []*facts.Getsubids{facts.GetsubidsOf(ctx, env, remap.KubeletUser, false), facts.GetsubidsOf(ctx, env, remap.KubeletUser, true)} {
			switch {
			case !g.Installed:
				msg += fmt.Sprintf("; `%s` cannot be run here (getsubids not installed)", g.Command)
			case g.Output != "":
				msg += fmt.Sprintf("; `%s` answers %q", g.Command, g.Output)
				r = r.With(g.Command, g.Output)
			}
		}
	}
	r.Message, r.Remedy = msg, remedy
	return r
}
