// Package remap is the remap domain: which account a daemon maps container
// root to, which subordinate ID ranges that account owns or will own, and
// the plan that apply writes and revert undoes.
package remap

import "errors"

// Spec is a parsed Docker `userns-remap` value (or `--user`).
//
// Forms: "default" (user and group dockremap, created by dockerd when
// missing), "user", "user:group", "uid", "uid:gid". An all-digit part is an
// ID. "root" is refused by dockerd; more than two ":" parts is an error.
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

// ParseSpec parses a userns-remap value.
// TODO(daemons helper): implement the forms above with exact errors.
func ParseSpec(s string) (Spec, error) {
	return Spec{}, errors.New("remap.ParseSpec: not implemented yet")
}
