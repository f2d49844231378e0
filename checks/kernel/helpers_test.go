package kernel

import (
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

func runCheck(t *testing.T, env *checks.Env, id string) checks.Result {
	t.Helper()
	return checkstest.Run(t, Checkers(), id, env)
}
