package cmd

import (
	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/internal/probe"
)

// The user-namespace probe starts this binary (/proc/self/exe) as its child
// in a new user namespace. The child waits until its stdin is closed. The
// probe package catches its own children before main runs (so that test
// binaries serve too); this command is the same child when run by hand.
func newProbeChildCmd() *cobra.Command {
	return &cobra.Command{
		Use:    probe.ChildCommand,
		Short:  "Internal: the child process of the user namespace probe",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if code := probe.RunChild(cmd.InOrStdin()); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
}
