package cmd

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/internal/build"
)

// VersionSchema names the JSON contract of `version --output json`.
const VersionSchema = "usernsctl.version/v1"

func versionText() string {
	in := build.Get()
	commit := in.Commit
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("usernsctl %s\ncommit: %s\ngo: %s\n", in.Version, commit, in.Go)
}

func newVersionCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print usernsctl's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !g.json() {
				cmd.Print(versionText())
				return nil
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Schema  string `json:"schema"`
				Failed  bool   `json:"failed"`
				Changed bool   `json:"changed"`
				Msg     string `json:"msg"`
				build.Info
			}{VersionSchema, false, false, "usernsctl " + build.Version(), build.Get()})
		},
	}
}
