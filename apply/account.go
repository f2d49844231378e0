package apply

import (
	"fmt"
	"time"

	"github.com/moby/sys/user"

	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/remap"
)

// now is the clock for shadow's "last changed" field; tests pin it.
var now = time.Now

// ensureAccount plans a system user name with group group when missing
// (a missing group alone is created too) and returns the user's uid. The
// lines go to /etc/passwd and /etc/group, and to /etc/shadow and
// /etc/gshadow when those exist, as useradd writes them.
func (p *plan) ensureAccount(name, group, gecos string) (int, error) {
	users, groups, err := p.accounts()
	if err != nil {
		return -1, err
	}
	var u *user.User
	for i := range users {
		if users[i].Name == name {
			u = &users[i]
		}
	}
	hasGroup := false
	for _, g := range groups {
		if g.Name == group {
			hasGroup = true
		}
	}
	if u != nil && hasGroup {
		return u.Uid, nil
	}
	if u == nil {
		if err := remap.CheckNewName("user", name); err != nil {
			return -1, inputErr(err)
		}
	}
	if !hasGroup {
		if err := remap.CheckNewName("group", group); err != nil {
			return -1, inputErr(err)
		}
	}
	defs, err := p.loginDefs()
	if err != nil {
		return -1, err
	}
	var a remap.NewAccount
	if u == nil {
		a, err = remap.PlanSystemAccount(name, group, gecos, p.nologin(), users, groups, defs)
	} else {
		a, err = remap.PlanSystemGroup(group, groups, defs)
	}
	if err != nil {
		return -1, &errs.Refusal{Reason: err.Error(), Fix: fmt.Sprintf("create the account yourself (`useradd --system --user-group --no-create-home --shell /usr/sbin/nologin %s`) and run apply again", name)}
	}
	shadow, err := p.get(shadowFile)
	if err != nil {
		return -1, inputErr(err)
	}
	gshadow, err := p.get(gshadowFile)
	if err != nil {
		return -1, inputErr(err)
	}
	if a.NewGroup {
		gr, _ := p.get(groupFile)
		p.set(groupFile, remap.AppendLine(gr, a.GroupLine(gshadow != nil)), 0)
		if gshadow != nil {
			p.set(gshadowFile, remap.AppendLine(gshadow, a.GshadowLine()), 0)
		}
		p.groups = append(p.groups, user.Group{Name: a.Group, Gid: a.GID})
		p.note("create group %s (gid %d)", a.Group, a.GID)
	}
	if u != nil {
		return u.Uid, nil
	}
	pw, _ := p.get(passwdFile)
	p.set(passwdFile, remap.AppendLine(pw, a.PasswdLine(shadow != nil)), 0)
	if shadow != nil {
		p.set(shadowFile, remap.AppendLine(shadow, a.ShadowLine(now())), 0)
	}
	p.users = append(p.users, user.User{Name: a.Name, Uid: a.UID, Gid: a.GID})
	p.note("create system user %s (uid %d, gid %d, no home, shell %s)", a.Name, a.UID, a.GID, a.Shell)
	return a.UID, nil
}

// nologin is the host's no-login shell.
func (p *plan) nologin() string {
	for _, s := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
		if p.env.Host.Exists(s) {
			return s
		}
	}
	return "/bin/false"
}
