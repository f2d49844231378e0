package cmd

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/apply"
	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/catalog"
	"github.com/usernsctl/usernsctl/internal/build"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/rules"
)

type restartFlags struct {
	restart bool
	command string
	timeout time.Duration
}

func (r *restartFlags) add(c *cobra.Command) {
	c.Flags().BoolVar(&r.restart, "restart", false, "restart the affected daemons and wait until they answer; if they do not, restore the previous files and restart again")
	c.Flags().StringVar(&r.command, "restart-command", "", "command (run by sh -c, USERNSCTL_DAEMONS set) that restarts the daemons when systemd is not PID 1")
	c.Flags().DurationVar(&r.timeout, "restart-timeout", apply.DefaultRestartTimeout, "how long to wait for a restarted daemon to answer")
}

type applyFlags struct {
	target, user, root, kube, slow, meta string
	count                                uint64
	maxPods                              int
	fixSysctl, dryRun                    bool
	force                                []string
	restart                              restartFlags
}

// validate refuses flag values apply would otherwise replace by defaults:
// a flag that is given must mean what it says.
func (f *applyFlags) validate(c *cobra.Command) error {
	if c.Flags().Changed("count") && f.count < rules.DockerMinIDCount {
		return usageErr("--count %d: a remapped container needs at least %d ids (uid 0 to 65535)", f.count, rules.DockerMinIDCount)
	}
	if c.Flags().Changed("max-pods") && f.maxPods < 1 {
		return usageErr("--max-pods %d: size the kubelet range for at least one pod", f.maxPods)
	}
	if c.Flags().Changed("user") {
		if _, err := userFlag(f.user); err != nil {
			return err
		}
		if f.user == "" {
			return usageErr(`--user "": name the remap user (default, NAME, NAME:GROUP, UID or UID:GID), or omit --user`)
		}
	}
	return nil
}

func newApplyCmd(g *globalFlags) *cobra.Command {
	var f applyFlags
	c := &cobra.Command{
		Use:   "apply --target docker|containerd|kubernetes",
		Short: "Write what the target needs: subordinate IDs, daemon.json, containerd and kubelet settings",
		Long: `apply runs check first and refuses (exit 1, nothing written) when a check
fails that this apply does not fix. Then it writes exactly what the target
needs — atomically, under the locks shadow-utils uses, with a backup of
every file — and reports each change as a unified diff. A second apply on
an applied host changes nothing (changed: false). revert undoes it.

Exit codes: 0 done (changed or not); 1 refused or failed (nothing is left
half-written); 2 bad input or usage (nothing written). See docs/apply.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.target == "" {
				return usageErr("apply needs --target docker, containerd or kubernetes")
			}
			if err := f.validate(cmd); err != nil {
				return err
			}
			opts := apply.Options{User: f.user, Count: f.count, MaxPods: f.maxPods, FixSysctl: f.fixSysctl, Force: f.force, DryRun: f.dryRun, Restart: f.restart.restart}
			var err error
			if opts.SlowChown, err = apply.ParseMode("slow-chown", f.slow); err != nil {
				return usageErr("%v", err)
			}
			if opts.Metacopy, err = apply.ParseMode("metacopy", f.meta); err != nil {
				return usageErr("%v", err)
			}
			if err := checks.ValidateIDs("--force", f.force, catalog.All()); err != nil {
				return usageErr("%v", err)
			}
			env, err := newEnv(cmd, f.root)
			if err != nil {
				return err
			}
			defer closeEnv(env)
			env.User = f.user
			if err := checks.Plan(cmd.Context(), env, f.target, f.kube); err != nil {
				return usageErr("%v", err)
			}
			if err := onlyFor(cmd, string(env.Target), map[string][]string{
				"user":               {"docker"},
				"count":              {"docker"},
				"max-pods":           {"kubernetes"},
				"slow-chown":         {"containerd", "kubernetes"},
				"metacopy":           {"containerd", "kubernetes"},
				"kubernetes-version": {"kubernetes"},
			}); err != nil {
				return err
			}
			opts.Target = env.Target
			runner := run.Runner(run.None{})
			if env.Host.Live() {
				runner = &run.Exec{Timeout: commandTimeout}
			}
			opts.Restarts = apply.Restarter{Host: env.Host, Runner: runner, Command: f.restart.command, Timeout: f.restart.timeout}
			res, err := apply.Apply(cmd.Context(), env, runner, opts)
			return finish(cmd, res, err, g, "apply", apply.ApplySchema, opts.Target)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "", "docker, containerd or kubernetes")
	fl.StringVar(&f.user, "user", "", "docker: the remap user: default, NAME, NAME:GROUP, UID or UID:GID (default: daemon.json's value, else default = dockremap)")
	fl.Uint64Var(&f.count, "count", 0, "docker: ids per new range (default: SUB_UID_COUNT from /etc/login.defs, 65536)")
	fl.IntVar(&f.maxPods, "max-pods", 0, "kubernetes: size the kubelet range for this many pods (default: the kubelet config, 110)")
	fl.StringVar(&f.slow, "slow-chown", "auto", "containerd 2.x: slow_chown for the overlayfs snapshotter: auto (when overlay idmap does not work here), on or off")
	fl.StringVar(&f.meta, "metacopy", "auto", "containerd 1.7: overlay metacopy: auto (on), on or off")
	fl.BoolVar(&f.fixSysctl, "fix-sysctl", false, "also set user.max_user_namespaces (live and in /etc/sysctl.d) when it is 0")
	fl.BoolVar(&f.dryRun, "dry-run", false, "write nothing; print the diff of every file that would change")
	fl.StringVar(&f.root, "root", "", "apply to a host tree instead of this host: writes only under DIR, executes nothing")
	fl.StringSliceVar(&f.force, "force", nil, "failing check IDs that must not block the apply (or all); never overrides bad input")
	fl.StringVar(&f.kube, "kubernetes-version", "", "Kubernetes version to plan for (default: kubelet --version)")
	f.restart.add(c)
	return c
}

type revertFlags struct {
	root    string
	force   bool
	dryRun  bool
	restart restartFlags
}

func newRevertCmd(g *globalFlags) *cobra.Command {
	var f revertFlags
	c := &cobra.Command{
		Use:   "revert",
		Short: "Undo every usernsctl apply: restore the exact previous bytes of every file",
		Long: `revert puts every file that usernsctl apply changed back to its bytes
before the first apply, removes the files apply created, restores live
settings, and (with --restart) restarts the daemons. A file that something
else changed since apply wrote it is not overwritten (exit 1) unless
--force. A second revert changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := newEnv(cmd, f.root)
			if err != nil {
				return err
			}
			defer closeEnv(env)
			runner := run.Runner(run.None{})
			if env.Host.Live() {
				runner = &run.Exec{Timeout: commandTimeout}
			}
			res, err := apply.Revert(cmd.Context(), env, apply.RevertOptions{Restart: f.restart.restart, Force: f.force, DryRun: f.dryRun,
				Restarts: apply.Restarter{Host: env.Host, Runner: runner, Command: f.restart.command, Timeout: f.restart.timeout}})
			return finish(cmd, res, err, g, "revert", apply.RevertSchema, "")
		},
	}
	c.Flags().StringVar(&f.root, "root", "", "revert a host tree instead of this host")
	c.Flags().BoolVar(&f.force, "force", false, "restore the backups even over files changed since apply wrote them")
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "write nothing; print the diff of every file revert would restore")
	f.restart.add(c)
	return c
}

// finish renders an apply or revert and turns it into the exit code. With
// --output json an error still prints one JSON object, so that scripts
// always have something to parse.
func finish(cmd *cobra.Command, res *apply.Result, err error, g *globalFlags, verb, schema string, target checks.Target) error {
	code := exitOK
	if err != nil {
		code = exitProblem
		var ie *errs.Input
		if errors.As(err, &ie) {
			code = exitUsage
		}
		res = &apply.Result{Schema: schema, Target: target, Failed: true, Msg: err.Error(),
			Changes: []apply.Change{}, Live: []apply.LiveChange{}, Notes: []string{}}
		if in, ok := errs.AsInput(err); ok {
			res.Fix = in.Fix
		}
	} else if res.Failed {
		code = exitProblem
	}
	res.Version = build.Version()
	if g.json() {
		if werr := res.WriteJSON(cmd.OutOrStdout()); werr != nil {
			return &exitError{code: exitUsage, err: werr}
		}
	} else if err == nil {
		if werr := res.WriteText(cmd.OutOrStdout(), verb); werr != nil {
			return &exitError{code: exitUsage, err: werr}
		}
	}
	if code == exitOK {
		return nil
	}
	if g.json() || err == nil {
		return &exitError{code: code}
	}
	return &exitError{code: code, err: err}
}
