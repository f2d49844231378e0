package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/catalog"
	"github.com/usernsctl/usernsctl/internal/build"
	"github.com/usernsctl/usernsctl/verify"
)

// CheckSchema names the JSON contract of `check --output json`, and
// ListSchema that of `check --list` and `verify --list`.
const (
	CheckSchema = "usernsctl.check/v1"
	ListSchema  = "usernsctl.list/v1"
)

type checkFlags struct {
	target, kube, user, root string
	ignore                   []string
	strict, list             bool
}

func newCheckCmd(g *globalFlags) *cobra.Command {
	var f checkFlags
	c := &cobra.Command{
		Use:   "check",
		Short: "Preflight: what stands between this host and user-namespaced containers",
		Long: `check reads the host (kernel, sysctls, runtime versions, subordinate ID
files, daemon configs), probes the kernel for real, and reports each finding
with a stable ID, a status (pass, warn, fail, skip), the values seen and the
exact remedy. It changes nothing.

Exit codes: 0 nothing failed (with --strict: nothing warned either);
1 at least one check failed; 2 usage error or the tool could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.list {
				return listChecks(cmd, g, f.target)
			}
			rep, facts, err := runCheck(cmd, f, g.output == "nfd")
			if err != nil {
				return err
			}
			if g.output == "nfd" {
				rep.Seal(build.Version())
				if err := rep.WriteNFD(cmd.OutOrStdout(), facts); err != nil {
					return err
				}
				if code := rep.ExitCode(); code != 0 {
					return &exitError{code: code}
				}
				return nil
			}
			if err := render(cmd, rep, g, "check"); err != nil {
				return err
			}
			if code := rep.ExitCode(); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "", "what is about to be enabled: docker, containerd, kubernetes or rootless (default: detected from what is installed)")
	fl.StringVar(&f.kube, "kubernetes-version", "", "Kubernetes version to plan for, MAJOR.MINOR (default: kubelet --version)")
	fl.StringVar(&f.user, "user", "", "Docker remap user: default, NAME, NAME:GROUP, UID or UID:GID (default: daemon.json, else default = dockremap)")
	fl.StringSliceVar(&f.ignore, "ignore", nil, "check IDs (comma-separated) whose failures become warnings, or all")
	fl.BoolVar(&f.strict, "strict", false, "treat warnings as failures")
	fl.StringVar(&f.root, "root", "", "check a snapshot tree instead of this host (see docs/snapshot.md)")
	fl.BoolVar(&f.list, "list", false, "list every check ID with a one-line description, and exit")
	return c
}

// runCheck runs the checks; with nfd it also gathers the facts the node
// labels carry beyond the verdicts (the ids containers get).
func runCheck(cmd *cobra.Command, f checkFlags, nfd bool) (*checks.Report, map[string]string, error) {
	ctx := cmd.Context()
	opts := checks.Options{Ignore: f.ignore, Strict: f.strict}
	if err := opts.Validate(catalog.All()); err != nil {
		return nil, nil, usageErr("%v", err)
	}
	env, err := newEnv(cmd, f.root)
	if err != nil {
		return nil, nil, err
	}
	defer closeEnv(env)
	if env.User, err = userFlag(f.user); err != nil {
		return nil, nil, err
	}
	if err := checks.Plan(ctx, env, f.target, f.kube); err != nil {
		return nil, nil, usageErr("%v", err)
	}
	if err := onlyFor(cmd, string(env.Target), map[string][]string{
		"user":               {"docker"},
		"kubernetes-version": {"kubernetes"},
	}); err != nil {
		return nil, nil, err
	}
	rep := checks.Run(ctx, env, catalog.For(env.Target), opts, CheckSchema)
	if !nfd {
		return rep, nil, nil
	}
	return rep, nodeFacts(ctx, env), nil
}

// nodeFacts are the labels beyond the verdicts: how many ids the ranges
// containers must use hold (the remap user's for Docker, the kubelet's
// otherwise).
func nodeFacts(ctx context.Context, env *checks.Env) map[string]string {
	var e *verify.Expect
	switch env.Target {
	case checks.Docker:
		e = verify.DockerExpect(ctx, env)
	case checks.Containerd, checks.Kubernetes:
		e = verify.KubeletExpect(ctx, env, "")
	default:
		return nil
	}
	if e.Err != nil || len(e.UID) == 0 {
		return nil
	}
	var n uint64
	for _, r := range e.UID {
		n += r.Count
	}
	return map[string]string{"userns-ids": fmt.Sprint(n)}
}

// listChecks prints `check --list`: every check, or the target's.
func listChecks(cmd *cobra.Command, g *globalFlags, target string) error {
	list := catalog.All()
	if target != "" {
		t, err := checks.ParseTarget(target)
		if err != nil {
			return usageErr("%v", err)
		}
		list = catalog.For(t)
	}
	checks.SortByID(list)
	if !g.json() {
		cmd.Print(catalog.List(list))
		return nil
	}
	return writeJSON(cmd, checks.NewListing(ListSchema, build.Version(), list))
}

func render(cmd *cobra.Command, rep *checks.Report, g *globalFlags, verb string) error {
	rep.Seal(build.Version())
	if g.json() {
		return rep.WriteJSON(cmd.OutOrStdout())
	}
	return rep.WriteText(cmd.OutOrStdout(), colorOK(cmd.OutOrStdout()), verb)
}
