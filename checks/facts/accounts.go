package facts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"github.com/moby/sys/user"

	"github.com/usernsctl/usernsctl/checks"
)

// Account file paths.
const (
	PasswdFile = "/etc/passwd"
	GroupFile  = "/etc/group"
)

// Accounts is /etc/passwd and /etc/group.
type Accounts struct {
	Users  []user.User
	Groups []user.Group
	// Err is why either file could not be read or parsed (naming it);
	// Users and Groups are then empty.
	Err error
}

// AccountsOf reads the account files through the host seam, once per run.
// Either file missing or unreadable sets Err, naming it.
//
// moby/sys/user's parsers are used as they are (the contract asks for
// them); they are lenient: a uid or gid that is not a number reads as 0 and
// a line longer than 64 KiB stops the parse (reported here with the file).
// NIS compat entries ("+", "-") and "#" lines are dropped: they name no
// account.
func AccountsOf(env *checks.Env) *Accounts {
	return once(env, "accounts", func(env *checks.Env) *Accounts {
		pw, err := env.Host.ReadFile(PasswdFile)
		if err != nil {
			return &Accounts{Err: err}
		}
		users, err := user.ParsePasswdFilter(bytes.NewReader(pw), func(u user.User) bool { return isAccount(u.Name) })
		if err != nil {
			return &Accounts{Err: accountErr(PasswdFile, err)}
		}
		gr, err := env.Host.ReadFile(GroupFile)
		if err != nil {
			return &Accounts{Err: err}
		}
		groups, err := user.ParseGroupFilter(bytes.NewReader(gr), func(g user.Group) bool { return isAccount(g.Name) })
		if err != nil {
			return &Accounts{Err: accountErr(GroupFile, err)}
		}
		return &Accounts{Users: users, Groups: groups}
	})
}

func isAccount(name string) bool {
	return name != "" && name[0] != '#' && name[0] != '+' && name[0] != '-'
}

func accountErr(path string, err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("%s: a line is too long to be an account entry: %w", path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// UserByName returns the first user with that name.
func (a *Accounts) UserByName(name string) (user.User, bool) {
	for _, u := range a.Users {
		if u.Name == name {
			return u, true
		}
	}
	return user.User{}, false
}

// UserByUID returns the first user with that uid.
func (a *Accounts) UserByUID(uid int) (user.User, bool) {
	for _, u := range a.Users {
		if u.Uid == uid {
			return u, true
		}
	}
	return user.User{}, false
}

// GroupByName returns the first group with that name.
func (a *Accounts) GroupByName(name string) (user.Group, bool) {
	for _, g := range a.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return user.Group{}, false
}

// UIDs lists every user's uid, in file order.
func (a *Accounts) UIDs() []int {
	out := make([]int, len(a.Users))
	for i, u := range a.Users {
		out[i] = u.Uid
	}
	return out
}

// GIDs lists every group's gid, in file order.
func (a *Accounts) GIDs() []int {
	out := make([]int, len(a.Groups))
	for i, g := range a.Groups {
		out[i] = g.Gid
	}
	return out
}
