package cmd

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/build"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/verify"
)

// verifyCommandTimeout bounds each docker/crictl/ctr command of verify:
// `docker run` on a loaded node takes longer than a version query.
const verifyCommandTimeout = 60 * time.Second

type verifyFlags struct {
	target, kube, user, root string
	pids                     []int
	containers, pods         []string
	all, list                bool
	probeTimeout             time.Duration
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify",
		Short: "Prove that containers really run in user namespaces with the configured ranges",
		Long: `verify looks at running containers from the host after the daemon restarted:
their /proc/PID/uid_map and gid_map against the configured subordinate ID
ranges, their user namespace against their runtime's (by /proc/PID/ns/user
inode), and their mounts.

Docker: dockerd must list name=userns, and a fresh probe container that verify
makes itself (an image imported from a tar of this binary: no registry;
--network none; a private bind mount) must map container root to the start of
the remap user's first ranges and write files owned by the mapped ids. The
probe container and image are removed on every path.

containerd, Kubernetes: the processes named by --pid or --container, or with
--all (the default) every container process in a user namespace other than
its runtime's: maps inside the kubelet's range (or --user's), one range per
pod and no overlap, the rootfs mechanism and, for Kubernetes, idmapped
volumes.

Exit codes: 0 verified; 1 a check failed; 2 usage error or the tool could not
run (interrupted: the probe is removed first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.list {
				if g.json() {
					return writeJSON(cmd, checks.NewListing(ListSchema, build.Version(), verify.All()))
				}
				cmd.Print(verify.List())
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			rep, err := runVerify(ctx, cmd, f)
			if err != nil {
				return err
			}
			if err := render(cmd, rep, g, "verify"); err != nil {
				return err
			}
			if code := rep.ExitCode(); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "", "what to verify: docker, containerd or kubernetes (default: detected from what is installed)")
	fl.IntSliceVar(&f.pids, "pid", nil, "process IDs of containers to verify (comma-separated or repeated)")
	fl.StringSliceVar(&f.containers, "container", nil, "container IDs to verify: docker inspect, else crictl inspect, else ctr task ls")
	fl.StringArrayVar(&f.pods, "pod", nil, "kubernetes: a pod to verify, NAMESPACE/NAME (repeatable), found through the CRI with crictl")
	fl.BoolVar(&f.all, "all", false, "containerd/kubernetes: every container process in a user namespace other than its runtime's (the default without --pid/--container)")
	fl.StringVar(&f.user, "user", "", "docker: the remap user (default: daemon.json); containerd/kubernetes: the owner of the ranges containers must use (default: the kubelet's)")
	fl.StringVar(&f.kube, "kubernetes-version", "", "Kubernetes version, MAJOR.MINOR (default: kubelet --version)")
	fl.StringVar(&f.root, "root", "", "verify a snapshot tree (recorded /proc) instead of this host; no probe container runs")
	fl.DurationVar(&f.probeTimeout, "probe-timeout", verify.DefaultProbeTimeout, "docker: how long the probe container may take to start and write its file")
	fl.BoolVar(&f.list, "list", false, "list every verify check ID, and exit")
	return c
}

func runVerify(ctx context.Context, cmd *cobra.Command, f verifyFlags) (*checks.Report, error) {
	env, err := newEnv(cmd, f.root)
	if err != nil {
		return nil, err
	}
	defer closeEnv(env)
	if env.Host.Live() {
		env.Run = run.NewMemo(&run.Exec{Timeout: verifyCommandTimeout})
	}
	if f.target == string(checks.Rootless) {
		return nil, usageErr("verify --target rootless: want docker, containerd or kubernetes")
	}
	if err := checks.Plan(ctx, env, f.target, f.kube); err != nil {
		if errors.Is(err, checks.ErrNoTarget) {
			return nil, usageErr("no --target given and none of kubelet, dockerd, containerd is installed: pass --target docker, containerd or kubernetes")
		}
		return nil, usageErr("%v", err)
	}
	opts := verify.Options{
		PIDs: f.pids, Containers: f.containers, Pods: f.pods, All: f.all,
		DockerHost:   os.Getenv("DOCKER_HOST"),
		ProbeTimeout: f.probeTimeout,
	}
	if ns := strings.TrimSpace(os.Getenv("CONTAINERD_NAMESPACE")); ns != "" {
		opts.CtrNamespaces = []string{ns}
	}
	if err := onlyFor(cmd, string(env.Target), map[string][]string{
		"all":                {"containerd", "kubernetes"},
		"pod":                {"kubernetes"},
		"probe-timeout":      {"docker"},
		"kubernetes-version": {"kubernetes"},
	}); err != nil {
		return nil, err
	}
	switch env.Target {
	case checks.Docker:
		if f.all {
			return nil, usageErr("--all is for containerd and kubernetes; docker verifies a fresh probe container (and --pid/--container)")
		}
		if env.User, err = userFlag(f.user); err != nil {
			return nil, err
		}
		if env.Host.Live() {
			opts.StartProbe = verify.LiveProbe
		}
	case checks.Containerd, checks.Kubernetes:
		if opts.User, err = userFlag(f.user); err != nil {
			return nil, err
		}
	default:
		return nil, usageErr("verify --target %s: want docker, containerd or kubernetes", env.Target)
	}
	for _, p := range f.pids {
		if p <= 0 {
			return nil, usageErr("--pid %d: not a process ID", p)
		}
	}
	rep, err := verify.Run(ctx, env, opts)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return rep, nil
}

// newVerifyChildCmd is the process inside Docker's probe container (the
// image's ENTRYPOINT): it writes a file as container root and waits.
func newVerifyChildCmd() *cobra.Command {
	return &cobra.Command{
		Use:    verify.ChildCommand + " DIR NONCE",
		Short:  "Internal: the process inside verify's probe container",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := verify.RunChild(args, cmd.ErrOrStderr()); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
}
