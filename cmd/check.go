package cmd

import (
	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/catalog"
	"github.com/usernsctl/usernsctl/internal/build"
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
			rep, err := runCheck(cmd, f)
			if err != nil {
				return err
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

func runCheck(cmd *cobra.Command, f checkFlags) (*checks.Report, error) {
	ctx := cmd.Context()
	opts := checks.Options{Ignore: f.ignore, Strict: f.strict}
	if err := opts.Validate(catalog.All()); err != nil {
		return nil, usageErr("%v", err)
	}
	env, err := newEnv(cmd, f.root)
	if err != nil {
		return nil, err
	}
	defer closeEnv(env)
	if env.User, err = userFlag(f.user); err != nil {
		return nil, err
	}
	if err := checks.Plan(ctx, env, f.target, f.kube); err != nil {
		return nil, usageErr("%v", err)
	}
	if err := onlyFor(cmd, string(env.Target), map[string][]string{
		"user":               {"docker"},
		"kubernetes-version": {"kubernetes"},
	}); err != nil {
		return nil, err
	}
	return checks.Run(ctx, env, catalog.For(env.Target), opts, CheckSchema), nil
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
