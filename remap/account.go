package remap

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/sys/user"

	"github.com/usernsctl/usernsctl/config/logindefs"
)

// NewAccount is a system account usernsctl creates the way
// `useradd --system --user-group --no-create-home --shell NOLOGIN NAME`
// would (dockerd does the same for "default"): no password, no home, no
// login shell. Only the lines are made here; apply writes them under the
// account-file locks, so that dry-run can show them and revert undo them.
type NewAccount struct {
	Name  string
	UID   int // -1: the user exists already
	GID   int // the group's gid (new or existing)
	Group string
	// NewGroup is set when the group must be created too.
	NewGroup bool
	Gecos    string
	Home     string
	Shell    string
}

// NoHome is the home of system accounts without one (Debian's convention,
// also used by systemd-sysusers).
const NoHome = "/nonexistent"

// PlanSystemAccount picks ids for a new system user and, when missing, its
// group named after it. Like useradd --system, ids are taken from the top
// of [SYS_UID_MIN, SYS_UID_MAX] downwards; the group gets the user's id
// when that gid is free, as useradd --user-group prefers.
func PlanSystemAccount(name, group, gecos, shell string, users []user.User, groups []user.Group, d *logindefs.Defs) (NewAccount, error) {
	if err := checkName(name); err != nil {
		return NewAccount{}, err
	}
	if strings.ContainsAny(gecos+shell, ":\n") {
		return NewAccount{}, fmt.Errorf("account fields must not contain ':' or a newline: %q, %q", gecos, shell)
	}
	a := NewAccount{Name: name, UID: -1, GID: -1, Group: group, Gecos: gecos, Home: NoHome, Shell: shell}
	for _, u := range users {
		if u.Name == name {
			return NewAccount{}, fmt.Errorf("user %q exists already", name)
		}
	}
	usedUID := map[int]bool{}
	for _, u := range users {
		usedUID[u.Uid] = true
	}
	usedGID := map[int]bool{}
	for _, g := range groups {
		usedGID[g.Gid] = true
		if g.Name == group {
			a.GID = g.Gid
		}
	}
	lo, hi := int(d.SysUIDMin.Value), int(d.SysUIDMax.Value)
	for id := hi; id >= lo; id-- {
		// A uid whose number is another group's gid is fine for useradd,
		// but the matching-ids convention is worth keeping when we can.
		if !usedUID[id] && (a.GID >= 0 || !usedGID[id]) {
			a.UID = id
			break
		}
	}
	if a.UID < 0 {
		for id := hi; id >= lo; id-- {
			if !usedUID[id] {
				a.UID = id
				break
			}
		}
	}
	if a.UID < 0 {
		return NewAccount{}, fmt.Errorf("no free system uid between SYS_UID_MIN %d and SYS_UID_MAX %d (%s) for user %q", lo, hi, d.Name, name)
	}
	if a.GID < 0 {
		if err := checkName(group); err != nil {
			return NewAccount{}, err
		}
		a.NewGroup = true
		if !usedGID[a.UID] {
			a.GID = a.UID
		} else {
			glo, ghi := int(d.SysGIDMin.Value), int(d.SysGIDMax.Value)
			for id := ghi; id >= glo; id-- {
				if !usedGID[id] {
					a.GID = id
					break
				}
			}
			if a.GID < 0 {
				return NewAccount{}, fmt.Errorf("no free system gid between SYS_GID_MIN %d and SYS_GID_MAX %d (%s) for group %q", glo, ghi, d.Name, group)
			}
		}
	}
	return a, nil
}

// PlanSystemGroup is a new group only (the user exists, its group does not).
func PlanSystemGroup(group string, groups []user.Group, d *logindefs.Defs) (NewAccount, error) {
	if err := checkName(group); err != nil {
		return NewAccount{}, err
	}
	used := map[int]bool{}
	for _, g := range groups {
		if g.Name == group {
			return NewAccount{}, fmt.Errorf("group %q exists already", group)
		}
		used[g.Gid] = true
	}
	for id := int(d.SysGIDMax.Value); id >= int(d.SysGIDMin.Value); id-- {
		if !used[id] {
			return NewAccount{UID: -1, GID: id, Group: group, NewGroup: true}, nil
		}
	}
	return NewAccount{}, fmt.Errorf("no free system gid between SYS_GID_MIN %d and SYS_GID_MAX %d for group %q", d.SysGIDMin.Value, d.SysGIDMax.Value, group)
}

// PasswdLine is the /etc/passwd entry ("x": the password lives in shadow).
func (a NewAccount) PasswdLine(shadowed bool) string {
	pw := "!"
	if shadowed {
		pw = "x"
	}
	return fmt.Sprintf("%s:%s:%d:%d:%s:%s:%s", a.Name, pw, a.UID, a.GID, a.Gecos, a.Home, a.Shell)
}

// ShadowLine locks the account ("!") with the last change set to today,
// as useradd writes it.
func (a NewAccount) ShadowLine(now time.Time) string {
	return fmt.Sprintf("%s:!:%d::::::", a.Name, now.Unix()/86400)
}

// GroupLine is the /etc/group entry.
func (a NewAccount) GroupLine(shadowed bool) string {
	pw := "!"
	if shadowed {
		pw = "x"
	}
	return fmt.Sprintf("%s:%s:%d:", a.Group, pw, a.GID)
}

// GshadowLine is the /etc/gshadow entry.
func (a NewAccount) GshadowLine() string { return a.Group + ":!::" }

// AppendLine adds line to an account file's bytes, first giving a last
// line without one its newline. Nothing else changes.
func AppendLine(file []byte, line string) []byte {
	out := slices.Clone(file)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, strings.TrimRight(line, "\n")+"\n"...)
}
