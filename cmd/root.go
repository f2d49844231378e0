// Package cmd holds usernsctl's cobra commands. They only parse flags, wire
// the host seam, runner and prober together, and render; the work is done
// in checks/, remap/ and verify/.
package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/build"
)

// Exit codes, documented in README.md and docs/checks.md.
const (
	exitOK      = 0
	exitProblem = 1 // a check failed, an apply was refused or failed
	exitUsage   = 2 // bad flags or input, or the tool itself could not run
)

// exitError carries an exit code up to Execute. A nil err means the
// command already printed what it had to say.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// Main runs usernsctl with args and returns its exit code; tests call it
// in-process. An error is said on stderr and, with --output json, as the
// one JSON object on stdout (schema of the command, failed, msg), so that
// a script always has something to parse.
func Main(args []string, stdout, stderr io.Writer) int {
	root, g := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	code, reported := exitUsage, error(nil)
	var ee *exitError
	if errors.As(err, &ee) {
		code, reported = ee.code, ee.err
	} else {
		reported = flagError(err) // cobra's own: unknown command or flag, bad value
	}
	if reported == nil {
		return code // the command said it already
	}
	fmt.Fprintln(stderr, "usernsctl:", reported)
	if g.json() || jsonRequested(args) {
		writeErrorJSON(stdout, schemaOf(root, args), reported)
	}
	return code
}

func newRoot() (*cobra.Command, *globalFlags) {
	root := &cobra.Command{
		Use:   "usernsctl",
		Short: "Prepare a Linux host for user-namespaced containers, and prove it works",
		Long: `usernsctl checks a host before user namespaces are enabled for Docker
(userns-remap), containerd or Kubernetes (hostUsers: false), applies the
subordinate ID ranges and daemon settings they need, and verifies running
containers afterwards.

Exit codes: 0 success, 1 a check failed or a change was refused, 2 usage
error or the tool could not run.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       build.Version(),
	}
	root.SetVersionTemplate(versionText())
	g := &globalFlags{}
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json (check: also nfd, node-feature-discovery's feature file)")
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		switch {
		case g.output == "nfd" && c.Name() == "check":
		case g.output != "text" && g.output != "json":
			return usageErr("--output %q: want text or json (nfd for check only)", g.output)
		}
		return nil
	}
	root.AddCommand(
		newCheckCmd(g),
		newApplyCmd(g),
		newRevertCmd(g),
		newVerifyCmd(g),
		newNSCmd(g),
		newSnapshotCmd(g),
		newVersionCmd(g),
		newVerifyChildCmd(),
		newProbeChildCmd(),
	)
	return root, g
}

// globalFlags are the flags every command takes.
type globalFlags struct {
	// output is "text" or "json" (checked once, before any command runs).
	output string
}

func (g *globalFlags) json() bool { return g.output == "json" }

// colorOK reports whether w is a terminal and NO_COLOR is unset.
func colorOK(w io.Writer) bool {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
