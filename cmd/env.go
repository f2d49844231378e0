package cmd

import (
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

// commandTimeout bounds each external command (`dockerd --version` on a
// loaded node can be slow; a hung one must not hang the check).
const commandTimeout = 10 * time.Second

// newEnv wires the host seam, command runner and prober for --root dir:
// the live host executes and probes for real; a snapshot tree replays
// .usernsctl/commands.json and probes.json and executes nothing.
// An explicit --root "" is refused: it must never mean the live host.
func newEnv(c *cobra.Command, rootDir string) (*checks.Env, error) {
	if f := c.Flags().Lookup("root"); f != nil && f.Changed && rootDir == "" {
		return nil, &exitError{code: exitUsage, err: errNoRoot}
	}
	h, err := host.At(rootDir)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	var r run.Runner
	if h.Live() {
		r = &run.Exec{Timeout: commandTimeout}
	} else {
		rec, err := loadRecorded(h)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		r = rec
	}
	pr, err := probe.Open(h)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return &checks.Env{Host: h, Run: run.NewMemo(r), Probes: pr}, nil
}

// closeEnv releases what the env holds (the live prober's child and
// mount namespace thread).
func closeEnv(env *checks.Env) {
	if c, ok := env.Probes.(io.Closer); ok {
		c.Close()
	}
}

func loadRecorded(h *host.Host) (*run.Recorded, error) {
	f, err := h.Open(run.CommandsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return run.ParseRecorded(nil)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return run.ParseRecorded(f)
}
