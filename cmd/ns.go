package cmd

import (
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/verify"
)

type nsFlags struct {
	root string
}

func newNSCmd(g *globalFlags) *cobra.Command {
	var f nsFlags
	c := &cobra.Command{
		Use:   "ns PID|CONTAINER...",
		Short: "Show processes' namespaces side by side with the host's, and their user namespace maps",
		Long: `ns prints the namespaces (cgroup, ipc, mnt, net, pid, time, user, uts) of
each process next to the host's (PID 1), marking each shared or isolated, the
namespaces the given processes share with each other (containers of one pod
share net, ipc and uts; pid only with shareProcessNamespace), and each user
namespace's uid_map and gid_map. A container ID is resolved with docker
inspect, else crictl inspect, else ctr task ls. It reads /proc only.

Exit codes: 0 shown; 2 usage error, or a process could not be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			env, err := newEnv(cmd, f.root)
			if err != nil {
				return err
			}
			defer closeEnv(env)
			if env.Host.Live() {
				env.Run = run.NewMemo(&run.Exec{Timeout: verifyCommandTimeout})
			}
			var namespaces []string
			if ns := strings.TrimSpace(os.Getenv("CONTAINERD_NAMESPACE")); ns != "" {
				namespaces = []string{ns}
			}
			rep := verify.NS(ctx, env, args, namespaces)
			if g.json() {
				err = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				err = rep.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return &exitError{code: exitUsage}
			}
			return nil
		},
	}
	c.Flags().StringVar(&f.root, "root", "", "read a snapshot tree (recorded /proc) instead of this host")
	return c
}
