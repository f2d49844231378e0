package facts

import (
	"errors"

	"github.com/moby/sys/user"

	"github.com/usernsctl/usernsctl/checks"
)

// Accounts is /etc/passwd and /etc/group.
type Accounts struct {
	Users  []user.User
	Groups []user.Group
}

// AccountsOf reads the account files through the host seam.
// TODO(subid helper): implement with user.ParsePasswd / user.ParseGroup.
func AccountsOf(env *checks.Env) (*Accounts, error) {
	return nil, errors.New("facts.AccountsOf: not implemented yet")
}
