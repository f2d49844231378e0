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
	pods []string
}

func newNSCmd(g *globalFlags) *cobra.Command {
	var f nsFlags
	c := &cobra.Command{
		Use:   "ns PID|CONTAINER... | --pod NAMESPACE/NAME",
		Short: "Show processes' namespaces side by side with the host's, and their user namespace maps",
		Long: `ns prints the namespaces (cgroup, ipc, mnt, net, pid, time, user, uts) of
each process next to the host's (PID 1), marking each shared or isolated, the
namespaces the given processes share with each other (containers of one pod
share net, ipc and uts; pid only with shareProcessNamespace), and each user
namespace's uid_map and gid_map. A container ID is resolved with docker
inspect, else crictl inspect, else ctr task ls. It reads /proc only.

Exit codes: 0 shown; 2 usage error, or a process could not be read.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(f.pods) == 0 {
				return usageErr("ns needs a PID, a container ID or --pod NAMESPACE/NAME")
			}
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
			rep := verify.NS(ctx, env, args, f.pods, namespaces)
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
	c.Flags().StringArrayVar(&f.pods, "pod", nil, "a pod, NAMESPACE/NAME (repeatable): its sandbox and running containers, found through the CRI with crictl")
	c.Flags().StringVar(&f.root, "root", "", "read a snapshot tree (recorded /proc) instead of this host")
	return c
}
