package apply

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/sysctl"
	"github.com/usernsctl/usernsctl/internal/errs"
)

const (
	maxUserNS       = "user.max_user_namespaces"
	maxUserNSFile   = "/etc/sysctl.d/99-usernsctl.conf"
	maxUserNSValue  = "28633" // a common fix value; rootlesskit warns below 1024
	maxUserNSCheck  = "sysctl.max_user_namespaces"
	maxUserNSPrefix = "# disabled by usernsctl apply --fix-sysctl --force: "
)

// planSysctl (--fix-sysctl) sets user.max_user_namespaces now and for the
// next boot when either is 0. A hardening file that sets 0 on purpose is
// named and the apply refused, unless --force names the check: then its
// line is commented out (backed up; revert restores it) when it would
// otherwise win over usernsctl's file.
func (a *applier) planSysctl(p *plan) error {
	l := facts.LiveSysctlOf(p.env, maxUserNS)
	live, liveErr := l.Value, l.Err
	persisted := facts.SysctlsOf(p.env)
	// A sysctl file that cannot be read could hold the 0 that wins at
	// boot: without it, usernsctl cannot tell whether its own file would.
	// (Lines systemd-sysctl skips are skipped here too: not a problem.)
	for _, e := range persisted.Problems {
		var line *errs.Input
		if !errors.As(e, &line) {
			return inputErr(fmt.Errorf("%w\n--fix-sysctl cannot tell what the next boot applies: make the file readable (or remove it), then run apply again; nothing was written", e))
		}
	}
	res := persisted.Lookup(maxUserNS)
	var zeros []sysctl.Entry
	for _, e := range res.Mentions {
		if !e.Glob && e.HasValue && e.Value == "0" {
			zeros = append(zeros, e)
		}
	}
	needLive := liveErr == nil && live == "0"
	needBoot := res.Final != nil && res.Final.Value == "0"
	if !needLive && !needBoot {
		p.note("--fix-sysctl: %s is %s live and nothing persists 0: nothing to fix", maxUserNS, live)
		return nil
	}
	if len(zeros) > 0 && !slices.Contains(a.opts.Force, maxUserNSCheck) {
		var where []string
		for _, z := range zeros {
			where = append(where, z.Where())
		}
		return &errs.Refusal{
			Reason: fmt.Sprintf("%s = 0 is set on purpose in %s (a hardening setting: user namespaces are disabled for everyone, root included)", maxUserNS, strings.Join(where, ", ")),
			Fix:    fmt.Sprintf("agree it with whoever hardened the host; to override it run apply again with --fix-sysctl --force %s", maxUserNSCheck),
		}
	}
	ours, err := p.get(maxUserNSFile)
	if err != nil {
		return inputErr(err)
	}
	want := []byte("# Managed by usernsctl: user namespaces for containers. Removed by usernsctl revert.\n" + maxUserNS + " = " + maxUserNSValue + "\n")
	if !bytes.Equal(ours, want) {
		p.set(maxUserNSFile, want, 0o644)
		p.note("persist %s = %s in %s", maxUserNS, maxUserNSValue, maxUserNSFile)
	}
	for _, z := range zeros {
		if !sysctl.AppliedAfter(z.File, maxUserNSFile) {
			continue // ours is applied later and wins
		}
		b, err := p.get(z.File)
		if err != nil || b == nil {
			return inputErr(fmt.Errorf("%s: %v", z.File, err))
		}
		out, ok := commentLine(b, z.Line, maxUserNSPrefix)
		if !ok {
			return inputErr(fmt.Errorf("%s: line %d is not where the check saw it: run apply again", z.File, z.Line))
		}
		p.set(z.File, out, 0)
		p.note("comment out %s (%s = 0): it is applied after %s and would win (--force %s)", z.Where(), maxUserNS, maxUserNSFile, maxUserNSCheck)
	}
	if needLive {
		p.live = append(p.live, LiveChange{Path: sysctl.ProcPath(maxUserNS), Before: live, Value: maxUserNSValue,
			Why: "user namespaces can be created now, without a reboot"})
	}
	return nil
}

// commentLine prefixes line n (1-based) of b; false when b has no line n.
func commentLine(b []byte, n int, prefix string) ([]byte, bool) {
	lines := bytes.SplitAfter(b, []byte("\n"))
	if n < 1 || n > len(lines) || len(lines[n-1]) == 0 {
		return nil, false
	}
	lines[n-1] = append([]byte(prefix), lines[n-1]...)
	return bytes.Join(lines, nil), true
}
