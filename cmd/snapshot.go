package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/snapshot"
)

type snapshotFlags struct {
	tar string
}

func newSnapshotCmd() *cobra.Command {
	var f snapshotFlags
	c := &cobra.Command{
		Use:   "snapshot [DIR]",
		Short: "Capture this host into a snapshot tree that `check --root` checks anywhere",
		Long: `snapshot runs the checks of every target on this host and writes exactly
what they used into DIR (new or empty): the files they read, the outputs of
the commands they ran (.usernsctl/commands.json) and the probe results
(.usernsctl/probes.json). Secrets (/etc/shadow, keys, kubeconfigs) are never
copied. With --tar FILE the tree is written as a tar archive instead (.gz
or .tgz: compressed). Run it as root so the probes run. See docs/snapshot.md.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 0) == (f.tar == "") {
				return usageErr("snapshot: give a directory or --tar FILE (one of them)")
			}
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			} else {
				tmp, err := os.MkdirTemp("", "usernsctl-snapshot-")
				if err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			h := host.Live()
			pr := probe.NewRecording(probe.For(h))
			defer pr.Close()
			contents, err := snapshot.Capture(cmd.Context(), h, &run.Exec{Timeout: commandTimeout}, pr)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			skipped, err := snapshot.Write(dir, h, contents)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			out := dir
			if f.tar != "" {
				if err := snapshot.Tar(dir, f.tar); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				out = f.tar
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot written to %s: %d paths used, %d commands, %d probes\n",
				out, len(contents.Files), len(contents.Commands), len(contents.Probes))
			for _, s := range skipped {
				fmt.Fprintf(cmd.OutOrStdout(), "  left out: %s\n", s)
			}
			return nil
		},
	}
	c.Flags().StringVar(&f.tar, "tar", "", "write the snapshot as a tar archive (FILE.tar, FILE.tar.gz or FILE.tgz)")
	return c
}
