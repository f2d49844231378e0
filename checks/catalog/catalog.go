// Package catalog is the list builder: every check usernsctl knows, and
// the list for one target, in report order.
package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/containerd"
	"github.com/usernsctl/usernsctl/checks/docker"
	"github.com/usernsctl/usernsctl/checks/host"
	"github.com/usernsctl/usernsctl/checks/kernel"
	"github.com/usernsctl/usernsctl/checks/kubelet"
	"github.com/usernsctl/usernsctl/checks/probe"
	"github.com/usernsctl/usernsctl/checks/rootless"
	"github.com/usernsctl/usernsctl/checks/runtime"
	"github.com/usernsctl/usernsctl/checks/subid"
	"github.com/usernsctl/usernsctl/checks/sysctl"
)

// All returns every check in report order: host first (kernel, sysctls,
// probes), then the stack (versions, daemon configs), then the ID files.
func All() []checks.Checker {
	var all []checks.Checker
	for _, area := range [][]checks.Checker{
		kernel.Checkers(),
		sysctl.Checkers(),
		rootless.Checkers(),
		host.Checkers(),
		probe.Checkers(),
		runtime.Checkers(),
		docker.Checkers(),
		containerd.Checkers(),
		kubelet.Checkers(),
		subid.Checkers(),
	} {
		all = append(all, area...)
	}
	return all
}

// For returns the checks that apply to target t.
func For(t checks.Target) []checks.Checker {
	var out []checks.Checker
	for _, c := range All() {
		if c.Info().AppliesTo(t) {
			out = append(out, c)
		}
	}
	return out
}

// Markdown renders docs/checks.md: one row per check, sorted by ID.
func Markdown() string {
	list := All()
	checks.SortByID(list)
	b := &strings.Builder{}
	b.WriteString("# Checks\n\n")
	b.WriteString("Generated from the checks' own descriptions by `make docs`; a test fails when this file is stale.\n")
	b.WriteString("IDs are stable: use them with `--ignore` and in scripts that read `--output json`.\n\n")
	b.WriteString("| ID | targets | what it checks |\n|---|---|---|\n")
	for _, c := range list {
		i := c.Info()
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", i.ID, targets(i), strings.ReplaceAll(i.Doc, "|", "\\|"))
	}
	return b.String()
}

// List renders `usernsctl check --list`.
func List(list []checks.Checker) string {
	w := 0
	for _, c := range list {
		if n := len(c.Info().ID); n > w {
			w = n
		}
	}
	b := &strings.Builder{}
	for _, c := range list {
		i := c.Info()
		fmt.Fprintf(b, "%-*s  %-34s  %s\n", w, i.ID, "["+targets(i)+"]", i.Title)
	}
	return b.String()
}

func targets(i checks.Info) string {
	if len(i.Targets) == 0 {
		return "all"
	}
	ts := make([]string, len(i.Targets))
	for k, t := range i.Targets {
		ts[k] = string(t)
	}
	sort.Strings(ts)
	return strings.Join(ts, ", ")
}
