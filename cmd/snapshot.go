package cmd

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/internal/build"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/snapshot"
)

// SnapshotSchema names the JSON contract of `snapshot --output json`.
const SnapshotSchema = "usernsctl.snapshot/v1"

type snapshotFlags struct {
	tar string
}

func newSnapshotCmd(g *globalFlags) *cobra.Command {
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
			if f.tar != "" && !snapshot.TarName(f.tar) {
				return usageErr("--tar %q: want FILE.tar, FILE.tar.gz or FILE.tgz", f.tar)
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
			msg := fmt.Sprintf("snapshot written to %s: %d paths used, %d commands, %d probes",
				out, len(contents.Files), len(contents.Commands), len(contents.Probes))
			if g.json() {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Schema   string   `json:"schema"`
					Version  string   `json:"version"`
					Failed   bool     `json:"failed"`
					Changed  bool     `json:"changed"`
					Msg      string   `json:"msg"`
					Path     string   `json:"path"`
					Files    int      `json:"files"`
					Commands int      `json:"commands"`
					Probes   int      `json:"probes"`
					LeftOut  []string `json:"left_out"`
				}{SnapshotSchema, build.Version(), false, false, msg, out, len(contents.Files), len(contents.Commands), len(contents.Probes), append([]string{}, skipped...)})
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			for _, s := range skipped {
				fmt.Fprintf(cmd.OutOrStdout(), "  left out: %s\n", s)
			}
			return nil
		},
	}
	c.Flags().StringVar(&f.tar, "tar", "", "write the snapshot as a tar archive (FILE.tar, FILE.tar.gz or FILE.tgz)")
	return c
}
