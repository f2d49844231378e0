// Package remap is the remap domain: which account a daemon maps container
// root to, which subordinate ID ranges that account owns or will own, and
// the plan that apply writes and revert undoes.
package remap

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/moby/sys/user"
)

// Spec is a parsed Docker `userns-remap` value (or `--user`).
//
// Forms: "default" (user and group dockremap, created by dockerd when
// missing; "default:GROUP" is dockremap with that group), "user",
// "user:group", "uid", "uid:gid". A part strconv.ParseInt reads as a 32-bit
// number is an ID ("+1500" and "01500" are uid 1500). More than two ":"
// parts is an error. A spec that resolves to the user named root is no
// error here: see Resolve and ErrRoot.
type Spec struct {
	Raw     string
	Default bool   // "default": dockremap
	User    string // user name; "" when given as a uid
	Group   string // group name; "" when absent or given as a gid
	UID     int    // -1 when given by name
	GID     int    // -1 when absent or given by name
}

// DefaultUser is the account dockerd creates for "default".
const DefaultUser = "dockremap"

// DefaultSpec is the value dockerd and usernsctl use when nothing else is
// named.
const DefaultSpec = "default"

// ErrRoot is a spec that resolves to the user named root (by name, or by a
// uid whose first account is root). dockerd does not refuse it: it logs
// `User namespaces: root cannot be remapped with itself; user namespaces
// are OFF` and starts without user namespaces, yet userns-remap stays set,
// so the data root still moves to <data-root>/0.0 and --privileged,
// --net=host and --pid=host containers are still refused (moby
// daemon/daemon_unix.go setupRemappedRoot, setupDaemonRoot,
// verifyPlatformContainerSettings). Only the name counts: another uid-0
// account ("toor") is remapped onto its own subordinate ranges like any
// user.
var ErrRoot = fmt.Errorf("root cannot be remapped with itself: dockerd starts with user namespaces OFF, yet still moves its data root to <data-root>/%s and still refuses --privileged, --net=host and --pid=host containers", RemappedDir(0, 0))

// RemappedDir is the directory dockerd makes under the data root for the
// remapped root's host uid and gid: "<uid>.<gid>" (moby setupDaemonRoot).
func RemappedDir(uid, gid int) string { return fmt.Sprintf("%d.%d", uid, gid) }

// ParseSpec parses a userns-remap value the way dockerd splits it, and
// refuses what dockerd would refuse or silently ignore: an empty value or
// part, more than two ":" parts, a negative or out-of-range ID, whitespace
// or control characters in a name.
func ParseSpec(s string) (Spec, error) {
	sp := Spec{Raw: s, UID: -1, GID: -1}
	if s == "" {
		return sp, errors.New(`userns-remap is empty: want "default", USER, USER:GROUP, UID or UID:GID`)
	}
	parts := strings.Split(s, ":")
	if len(parts) > 2 {
		return sp, fmt.Errorf(`userns-remap %q has %d ":"-separated parts: want "default", USER, USER:GROUP, UID or UID:GID (dockerd: `+"`Invalid user/group specification in --userns-remap: %q`)", s, len(parts), s)
	}
	for i, p := range parts {
		if p == "" {
			what := "user"
			if i == 1 {
				what = "group"
			}
			return sp, fmt.Errorf(`userns-remap %q: the %s part is empty: want "default", USER, USER:GROUP, UID or UID:GID`, s, what)
		}
	}

	id, isID, err := parseID(parts[0])
	switch {
	case err != nil:
		return sp, fmt.Errorf("userns-remap %q: user %w", s, err)
	case isID:
		sp.UID = id
	case parts[0] == DefaultSpec: // "default:GROUP" too (moby parseRemappedRoot tests the user part)
		sp.Default, sp.User = true, DefaultUser
	default:
		if err := checkName(parts[0]); err != nil {
			return sp, fmt.Errorf("userns-remap %q: user %w", s, err)
		}
		sp.User = parts[0]
	}

	if len(parts) == 2 {
		id, isID, err := parseID(parts[1])
		switch {
		case err != nil:
			return sp, fmt.Errorf("userns-remap %q: group %w", s, err)
		case isID:
			sp.GID = id
		default:
			if err := checkName(parts[1]); err != nil {
				return sp, fmt.Errorf("userns-remap %q: group %w", s, err)
			}
			sp.Group = parts[1]
		}
	}
	return sp, nil
}

// parseID reads a part as dockerd does: strconv.ParseInt(part, 10, 32)
// makes it an ID, so "+1500" and "01500" are 1500. A negative ID matches
// no account (`Uid -1 has no entry in /etc/passwd`), and a larger number
// would be looked up as a name no account has: both are refused.
func parseID(p string) (id int, isID bool, err error) {
	digits := strings.TrimLeft(p, "+-")
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false, nil // a name
	}
	n, perr := strconv.ParseInt(p, 10, 32)
	switch {
	case len(p)-len(digits) > 1:
		return 0, false, fmt.Errorf("%q is not a valid ID: IDs are unsigned decimal numbers", p)
	case perr == nil && n < 0:
		return 0, false, fmt.Errorf("%q is not a valid ID: dockerd reads it as uid or gid %d, which no account has", p, n)
	case perr != nil:
		return 0, false, fmt.Errorf("ID %s is out of range (dockerd reads at most %d as an ID, and looks a larger number up as a name)", p, math.MaxInt32)
	}
	return int(n), true, nil
}

// checkName refuses names no account can have: dockerd would only fail
// later, on the lookup, with a less helpful message.
func checkName(n string) error {
	for _, r := range n {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar || r == '/' || r == ',' {
			return fmt.Errorf("name %q contains %q, which no account name can contain", n, r)
		}
	}
	return nil
}

// nameRE is shadow's default NAME_REGEX for useradd and groupadd
// (useradd(8): "[a-z_][a-z0-9_-]*[$]?"), which apply keeps for the accounts
// it creates; 32 is useradd's length limit.
var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`)

// CheckNewName refuses a name apply would create that useradd would not.
func CheckNewName(kind, n string) error {
	if len(n) > 32 || !nameRE.MatchString(n) {
		return fmt.Errorf("%s name %q: useradd creates only names of lower-case letters, digits, '_' and '-', starting with a letter or '_' (at most 32): create the account yourself, or name another", kind, n)
	}
	return nil
}

// String is the value as written.
func (s Spec) String() string { return s.Raw }

// Account is what a Spec names on one host's /etc/passwd and /etc/group,
// resolved the way dockerd resolves it at start.
type Account struct {
	// User is the account name; "" when the spec gives a uid no account has.
	User string
	// UID is the account's uid; for a missing account named by uid, the
	// uid given; -1 otherwise.
	UID int
	// Exists says the user is in /etc/passwd.
	Exists bool
	// Group is the group dockerd uses: the named group, the group of the
	// given gid, or (no group part) the group with the user's name, or with
	// gid = uid when the user was given as a uid. "" when not found by gid.
	Group string
	// GID is the group's gid, -1 when the group does not exist.
	GID int
	// GroupExists says the group is in /etc/group.
	GroupExists bool
	// Created is "default" with no dockremap account yet: dockerd creates
	// user and group dockremap at start (and so does usernsctl apply).
	Created bool
}

// Resolve finds the account the spec names, as dockerd's lookups do (the
// first account with the name or uid). Missing accounts are not an error
// (see Exists, GroupExists, Created). A spec that resolves to the user
// named root returns the whole account and ErrRoot (see there); any other
// uid-0 account is an account like any other.
func (s Spec) Resolve(users []user.User, groups []user.Group) (Account, error) {
	a := Account{UID: -1, GID: -1}
	var u *user.User
	switch {
	case s.UID >= 0:
		a.UID = s.UID
		for i := range users {
			if users[i].Uid == s.UID {
				u = &users[i]
				break
			}
		}
	default:
		a.User = s.User
		for i := range users {
			if users[i].Name == s.User {
				u = &users[i]
				break
			}
		}
	}
	if u != nil {
		a.User, a.UID, a.Exists = u.Name, u.Uid, true
	}
	if s.Default && !a.Exists {
		a.Created = true
		a.Group = DefaultUser
		return a, nil
	}

	// The group dockerd looks up.
	byName, gid := s.Group, s.GID
	if s.Group == "" && s.GID < 0 {
		if s.UID >= 0 {
			gid = s.UID
		} else {
			byName = s.User
		}
	}
	a.Group = byName
	for i := range groups {
		if (byName != "" && groups[i].Name == byName) || (byName == "" && groups[i].Gid == gid) {
			a.Group, a.GID, a.GroupExists = groups[i].Name, groups[i].Gid, true
			break
		}
	}
	if a.Exists && a.User == "root" {
		return a, fmt.Errorf("userns-remap %q names root (uid %d): %w", s.Raw, a.UID, ErrRoot)
	}
	return a, nil
}

// WantGroup describes the group dockerd looks up, for messages: `group
// "docker"` or `gid 1500`.
func (s Spec) WantGroup() string {
	switch {
	case s.Group != "":
		return fmt.Sprintf("group %q", s.Group)
	case s.GID >= 0:
		return fmt.Sprintf("gid %d", s.GID)
	case s.UID >= 0:
		return fmt.Sprintf("gid %d (the uid, as no group is given)", s.UID)
	}
	return fmt.Sprintf("group %q (the user's name, as no group is given)", s.User)
}

// SubIDKeys are the owner fields dockerd matches in /etc/subuid AND
// /etc/subgid: the user name and the uid, never the group. A missing
// account named by uid has only its uid.
func (a Account) SubIDKeys() []string {
	var keys []string
	if a.User != "" {
		keys = append(keys, a.User)
	}
	if a.UID >= 0 {
		keys = append(keys, strconv.Itoa(a.UID))
	}
	return keys
}
