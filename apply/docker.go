package apply

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/daemonjson"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/rules"
)

// planDocker enables userns-remap: the remap account (created like
// dockerd creates dockremap), its ranges in both ID files, and the
// userns-remap key in the daemon.json in effect.
func (a *applier) planDocker(ctx context.Context, p *plan) error {
	if f, ok := facts.DockerUnitOf(p.env).Flag("userns-remap"); ok {
		return &errs.Refusal{
			Reason: fmt.Sprintf("userns-remap is already a dockerd flag (--%s in %s): dockerd refuses to start when a directive is both a flag and in daemon.json", f.Name, f.Where()),
			Fix:    "keep the flag and drop `apply`, or remove the flag from the unit, run `systemctl daemon-reload`, and run apply again",
		}
	}
	d := facts.DockerConfigOf(p.env)
	raw, err := p.get(d.Target)
	if err != nil {
		return inputErr(err)
	}
	var jf *daemonjson.File
	current := ""
	if raw != nil {
		if jf, err = daemonjson.ParseAs(bytes.NewBuffer(raw), d.Path, d.Syntax); err != nil {
			return inputErr(fmt.Errorf("%w\nnothing was written: fix %s (`usernsctl check --target docker` shows the same), then run apply again", err, d.Path))
		}
		if v, set := jf.Values["userns-remap"]; !set || v != nil { // null is unset, as dockerd reads it
			s, ok, err := jf.String("userns-remap")
			if err != nil {
				return inputErr(err)
			}
			if ok {
				current = s
			}
		}
	}

	value := a.opts.User
	switch {
	case value == "" && current != "":
		value = current
	case value == "":
		value = remap.DefaultSpec
	}
	spec, err := remap.ParseSpec(value)
	if err != nil {
		return inputErr(fmt.Errorf("userns-remap %q: %w", value, err))
	}
	users, groups, err := p.accounts()
	if err != nil {
		return err
	}
	acct, err := spec.Resolve(users, groups)
	if err != nil {
		return inputErr(err)
	}
	name, group := acct.User, acct.Group
	switch {
	case acct.Exists && !acct.GroupExists && spec.GID >= 0:
		return inputErr(fmt.Errorf("userns-remap %q: no group has gid %d: give a group name (apply creates it) or create the group first", value, spec.GID))
	case spec.Default:
		// "default:GROUP" is dockremap with that group: once apply has
		// created dockremap, dockerd looks the group up (moby
		// parseRemappedRoot), so it must exist too.
		name, group = remap.DefaultUser, remap.DefaultUser
		if spec.Group != "" || spec.GID >= 0 {
			group = acct.Group
			if !acct.GroupExists {
				group = spec.Group
			}
		}
	case !acct.Exists && spec.UID >= 0:
		return inputErr(fmt.Errorf("userns-remap %q: no account has uid %d: give a user name (apply creates it) or create the account first", value, spec.UID))
	case !acct.GroupExists && spec.UID >= 0 && spec.Group == "" && spec.GID < 0:
		// R4: a uid alone makes dockerd look up the group of gid = uid.
		return &errs.Refusal{
			Reason: fmt.Sprintf("userns-remap %q names a uid without a group, so dockerd looks up the group of gid %d, and none exists (`Gid %d has no entry in /etc/group`)", value, spec.UID, spec.UID),
			Fix:    fmt.Sprintf("create it (`groupadd --system --gid %d %s`), or name the user instead (--user %s), then run apply again", spec.UID, acct.User, acct.User),
		}
	}
	if group == "" {
		group = name
	}
	uid, nss, err := a.nssAccount(ctx, p, acct, name, group)
	if err != nil {
		return err
	}
	if !nss {
		if uid, err = p.ensureAccount(name, group, "usernsctl Docker userns-remap"); err != nil {
			return err
		}
	}
	req, err := a.dockerRequest(p)
	if err != nil {
		return err
	}
	if err := a.ensureRanges(p, remap.Goal{
		Keys:     []string{name, strconv.Itoa(uid)},
		Owner:    name,
		Request:  req,
		MinCount: rules.DockerMinIDCount,
	}); err != nil {
		return err
	}

	if current != value {
		var out []byte
		if jf == nil {
			out = daemonjson.Create("userns-remap", value)
		} else if out, err = jf.Set("userns-remap", value); err != nil {
			return inputErr(err)
		}
		p.set(d.Target, out, 0o644)
		if a.canValidate(ctx, p) {
			p.check[d.Target] = func(candidate []byte) error { return a.validateDaemonJSON(ctx, candidate) }
		}
		where := d.Path
		if d.Target != d.Path {
			where += " (a link to " + d.Target + ")"
		}
		p.note("set \"userns-remap\": %q in %s (%s); dockerd keeps images, containers and volumes made before under its old data root", value, where, d.Source)
		p.restart("docker")
	}
	return nil
}

// nssAccount finds a remap user that /etc/passwd lacks but `getent`
// knows (SSSD, LDAP: nsswitch.conf names them), as dockerd would (R8):
// apply then creates no local duplicate of it. Its group must be known
// too, locally or to getent. ok is false when getent does not know the
// user (or cannot be asked, as under --root without a recorded answer):
// apply creates the account as usual.
func (a *applier) nssAccount(ctx context.Context, p *plan, acct remap.Account, name, group string) (uid int, ok bool, err error) {
	if acct.Exists || acct.Created {
		return -1, false, nil
	}
	u, found := facts.NSSUserOf(ctx, p.env, name)
	if !found {
		return -1, false, nil
	}
	if !acct.GroupExists {
		if _, found := facts.NSSGroupOf(ctx, p.env, group); !found {
			return -1, false, &errs.Refusal{
				Reason: fmt.Sprintf("user %s comes from the directory (`getent passwd %s`), but no group %s is known locally or to `getent group %s`: dockerd would stop at the group lookup", name, name, group, group),
				Fix:    fmt.Sprintf("create group %s in the directory (or name an existing group: --user %s:GROUP), then run apply again", group, name),
			}
		}
	}
	p.note("user %s (uid %d) comes from the directory (`getent passwd %s`): no local account is created", name, u.Uid, name)
	return u.Uid, true, nil
}

// dockerRequest sizes a new remap range: --count, else login.defs
// SUB_UID_COUNT (65536 when 0, which only disables useradd's own
// allocation); within SUB_UID_MIN/MAX and SUB_GID_MIN/MAX, since the same
// range is written to both files.
func (a *applier) dockerRequest(p *plan) (remap.Request, error) {
	d, err := p.loginDefs()
	if err != nil {
		return remap.Request{}, err
	}
	count := a.opts.Count // the flag is at least rules.DockerMinIDCount (cmd)
	if count == 0 {
		count = d.SubUIDCount.Value
		if count < rules.DockerMinIDCount {
			// COUNT 0 only stops useradd allocating; a smaller count would
			// give dockerd a range that cannot map a container.
			if count > 0 {
				p.note("SUB_UID_COUNT %d (%s) is below the %d ids a remapped container needs: allocating %d", count, d.Where(d.SubUIDCount), rules.DockerMinIDCount, rules.DockerMinIDCount)
			}
			count = rules.DockerMinIDCount
		}
	}
	return remap.Request{
		Min:   max(d.SubUIDMin.Value, d.SubGIDMin.Value),
		Max:   min(d.SubUIDMax.Value, d.SubGIDMax.Value),
		Count: count,
	}, nil
}

// ensureRanges runs the range planning on the plan's ID files.
func (a *applier) ensureRanges(p *plan, g remap.Goal) error {
	uid, gid, err := p.subids()
	if err != nil {
		return err
	}
	g.UIDs, g.GIDs = p.accountIDs()
	out, err := remap.EnsureRanges(uid, gid, g)
	if err != nil {
		return refusal(err)
	}
	p.flushSubids()
	if out.Added {
		p.note("%s", out.Note)
	}
	return nil
}

// canValidate: `dockerd --validate` exists from rules.DockerValidate on,
// and runs only on the live host (nothing is executed under --root). It
// never checks the data root's permissions (docker.remapped_root_access)
// nor the storage driver, and before rules.DockerValidateRemap not the
// remap account and its ranges either: the checks judge those.
func (a *applier) canValidate(ctx context.Context, p *plan) bool {
	if !p.env.Host.Live() {
		return false
	}
	v := facts.VersionOf(ctx, p.env, versions.Dockerd)
	return v.Known() && v.Version.AtLeast(rules.DockerValidate.Value)
}

// validateDaemonJSON runs `dockerd --validate` on the candidate, written to
// a private temporary file. It runs inside the commit after the account
// and ID files are in place: with them, dockerd has nothing to create
// (from rules.DockerValidateRemap on, --validate resolves the remap
// account, and for "default" without dockremap would run useradd and
// usermod itself).
func (a *applier) validateDaemonJSON(ctx context.Context, candidate []byte) error {
	f, err := os.CreateTemp("", "usernsctl-daemon-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(candidate); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := a.runner.Run(ctx, "dockerd", "--validate", "--config-file", f.Name())
	if err != nil {
		return fmt.Errorf("dockerd --validate refused the new daemon.json: %w", err)
	}
	// It prints "configuration OK" on stderr.
	if !bytes.Contains(append(out.Stderr, out.Stdout...), []byte("configuration OK")) {
		return fmt.Errorf("dockerd --validate did not say \"configuration OK\": %s", strings.TrimSpace(string(out.Stderr)))
	}
	return nil
}
