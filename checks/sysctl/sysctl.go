// Package sysctl holds the sysctl.* checks: the user-namespace sysctls, live
// and as the next boot applies them, and the AppArmor restriction that
// Ubuntu's sysctl turns on.
package sysctl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/sysctl"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/versions"
)

var rootless = []checks.Target{checks.Rootless}

// Checkers returns the sysctl.* checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "sysctl.max_user_namespaces", Title: "user.max_user_namespaces",
			Doc: "user.max_user_namespaces is above 0 now and in the sysctl files the next boot applies (systemd-sysctl order); rootless wants ≥1024.",
		}, checkMaxUserNamespaces),
		checks.New(checks.Info{
			ID: "sysctl.unprivileged_userns_clone", Title: "kernel.unprivileged_userns_clone",
			Doc:     "On Debian/Arch kernels that have it, kernel.unprivileged_userns_clone is 1 now and at the next boot.",
			Targets: rootless,
		}, checkUnprivilegedClone),
		checks.New(checks.Info{
			ID: "sysctl.apparmor_userns", Title: "AppArmor user namespace restriction",
			Doc:     "With kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 24.04), an AppArmor profile grants `userns,` to rootlesskit.",
			Targets: rootless,
		}, checkAppArmor),
	}
}

// dropIn is the file usernsctl suggests for persisted values.
const dropIn = "/etc/sysctl.d/99-usernsctl.conf"

// knob is one sysctl: its live value and what the next boot applies.
type knob struct {
	key     string
	proc    string
	live    string
	liveErr error
	res     sysctl.Result
	ps      *facts.Sysctls
}

func loadKnob(env *checks.Env, key string) knob {
	k := knob{key: key, proc: sysctl.ProcPath(key), ps: facts.SysctlsOf(env)}
	live := facts.LiveSysctlOf(env, key)
	k.live, k.liveErr = live.Value, live.Err
	k.res = k.ps.Lookup(key)
	return k
}

func (k knob) absent() bool { return errors.Is(k.liveErr, fs.ErrNotExist) }

// persisted is the value the next boot applies, if a file sets one.
func (k knob) persisted() (string, bool) {
	if k.res.Final == nil {
		return "", false
	}
	return k.res.Final.Value, true
}

// describe says what the sysctl files do with the key, naming file:line.
func (k knob) describe() string {
	var s string
	switch {
	case k.res.Final != nil:
		s = fmt.Sprintf("%s persists %s", k.res.Final.Where(), k.res.Final.Value)
	case k.cancelledAt() != "":
		s = fmt.Sprintf("no sysctl file persists it (%s cancels it)", k.cancelledAt())
	default:
		s = "no sysctl file sets it, so the kernel default applies at boot"
	}
	if c := k.context(); c != "" {
		s += "; " + c
	}
	return s
}

// cancelledAt is the "-key" line that leaves the key unset, if any.
func (k knob) cancelledAt() string {
	at := ""
	for _, m := range k.res.Mentions {
		if !m.Glob && !m.HasValue {
			at = m.Where()
		}
	}
	return at
}

// context is what describe adds to the winning line: the lines it
// overrides and the files that could not be used.
func (k knob) context() string {
	var parts []string
	if k.res.Final != nil {
		var others []string
		for _, m := range k.res.Mentions {
			if m.Where() != k.res.Final.Where() {
				others = append(others, m.String())
			}
		}
		if len(others) > 0 {
			parts = append(parts, "it overrides "+strings.Join(others, ", "))
		}
	}
	if u := k.unread(); u != "" {
		parts = append(parts, u)
	}
	return strings.Join(parts, "; ")
}

// tail appends context to a message that already names the winning line.
func (k knob) tail() string {
	if c := k.context(); c != "" {
		return "; " + c
	}
	return ""
}

// unread names sysctl files (or lines that mention the key) that could not
// be used, since they may hold a setting we cannot see.
func (k knob) unread() string {
	name := k.key[strings.LastIndex(k.key, ".")+1:]
	var out []string
	for _, p := range k.ps.Problems {
		if se, ok := p.(*errs.Input); ok {
			// A skipped line: only worth saying when it looks like ours.
			if strings.Contains(se.Msg, name) {
				out = append(out, p.Error())
			}
			continue
		}
		out = append(out, p.Error())
	}
	if len(out) == 0 {
		return ""
	}
	return "could not use all sysctl files, which may also set it: " + strings.Join(out, "; ")
}

func (k knob) with(r checks.Result) checks.Result {
	r = r.With("key", k.key).With("live_path", k.proc)
	if k.liveErr == nil {
		r = r.With("live", k.live)
	}
	if v, ok := k.persisted(); ok {
		r = r.With("persisted", v).With("persisted_at", k.res.Final.Where())
	}
	mentions := make([]string, 0, len(k.res.Mentions))
	for _, m := range k.res.Mentions {
		mentions = append(mentions, m.String())
	}
	r = r.With("mentions", mentions)
	if len(k.ps.Aliases) > 0 {
		r = r.With("sysctl_conf_aliases", k.ps.Aliases)
	}
	if len(k.ps.Problems) > 0 {
		probs := make([]string, len(k.ps.Problems))
		for i, p := range k.ps.Problems {
			probs[i] = p.Error()
		}
		r = r.With("sysctl_file_problems", probs)
	}
	return r
}

// persistFix is the edit that makes the next boot apply value, computed
// from what wins today: a drop-in in /etc/sysctl.d is enough only if no
// explicit line is applied after it; otherwise the last such line must
// change.
func (k knob) persistFix(env *checks.Env, value string) string {
	line := fmt.Sprintf("%s = %s", k.key, value)
	var later *sysctl.Entry
	for _, m := range k.res.Mentions {
		if !m.Glob && sysctl.AppliedAfter(m.File, dropIn) {
			later = &m
		}
	}
	if later != nil {
		return fmt.Sprintf("edit %s line %d to read `%s` (a drop-in such as %s would not win: %s is applied after it)",
			later.File, later.Line, line, dropIn, later.File)
	}
	if env.Host.Exists(dropIn) {
		return fmt.Sprintf("set `%s` in %s", line, dropIn)
	}
	return fmt.Sprintf("echo '%s' > %s", line, dropIn)
}

func (k knob) setNow(value string) string {
	return fmt.Sprintf("sysctl -w %s=%s", k.key, value)
}

// liveWarn is the finding for a live value that cannot be read.
func (k knob) liveWarn(extra string) checks.Result {
	return k.with(checks.Warnf(fmt.Sprintf("run `sysctl %s` on the host to see the value", k.key),
		"could not read the live %s from %s: %v%s", k.key, k.proc, k.liveErr, extra))
}

// Values for user.max_user_namespaces.
const (
	fixMaxUserNS      = 28633 // a common fix value, well above any node's needs
	rootlessMinUserNS = 1024  // rootlesskit warns below this
)

func checkMaxUserNamespaces(_ context.Context, env *checks.Env) checks.Result {
	k := loadKnob(env, "user.max_user_namespaces")
	if k.liveErr != nil {
		extra := ""
		if k.absent() {
			if old := noUserNSLimit(env); old != "" {
				return k.with(checks.Skipf("%s does not exist: %s has no limit on user namespaces (user.max_user_namespaces arrived in 4.9 and RHEL 7.4); kernel.config.user_ns and kernel.el7_userns decide there", k.proc, old))
			}
			extra = " (kernels before 4.9 and RHEL 7 before 7.4 have no such limit; kernel.config.user_ns and kernel.el7_userns decide there)"
		}
		return k.liveWarn(extra)
	}
	live, err := strconv.ParseInt(k.live, 10, 64)
	if err != nil {
		return k.with(checks.Warnf(fmt.Sprintf("run `sysctl %s` on the host to see the value", k.key),
			"live %s in %s is %q, not a number", k.key, k.proc, k.live))
	}
	min := int64(1)
	if env.Target == checks.Rootless {
		min = rootlessMinUserNS
	}
	want := strconv.FormatInt(live, 10)
	if live < min {
		want = strconv.Itoa(fixMaxUserNS)
	}
	pv, pset := k.persisted()
	pn, perr := strconv.ParseInt(pv, 10, 64)
	persistOK := pset && perr == nil && pn >= min
	fix := func() string {
		if persistOK {
			return k.setNow(pv) // the next boot already applies pv
		}
		return k.setNow(want) + "\nthen persist it: " + k.persistFix(env, want)
	}
	desc := k.describe()
	switch {
	case live == 0:
		return k.with(checks.Failf(fix(),
			"%s is 0 (%s): creating any user namespace fails with ENOSPC, root included (runc: \"getting the final child's pid from pipe caused: EOF\"); %s", k.key, k.proc, desc))
	case pset && perr != nil:
		return k.with(checks.Warnf(k.persistFix(env, want),
			"%s is %d (%s), but %s persists %q, which is not a number: the next boot fails to set it%s", k.key, live, k.proc, k.res.Final.Where(), pv, k.tail()))
	case pset && pn == 0:
		return k.with(checks.Failf(k.persistFix(env, want),
			"%s is %d now (%s), but %s persists 0: after the next boot every user namespace creation fails with ENOSPC, root included%s", k.key, live, k.proc, k.res.Final.Where(), k.tail()))
	case live < min:
		return k.with(checks.Warnf(fix(),
			"%s is %d (%s), below %d, where rootlesskit warns that rootless containers may run out of user namespaces; %s", k.key, live, k.proc, min, desc))
	case pset && pn < min:
		return k.with(checks.Warnf(k.persistFix(env, want),
			"%s is %d now (%s), but %s persists %d, below %d, where rootlesskit warns%s", k.key, live, k.proc, k.res.Final.Where(), pn, min, k.tail()))
	case pset && pn != live:
		return k.with(checks.Warnf(fmt.Sprintf("to keep %d at boot: %s; or to apply the persisted value now: `%s`", live, k.persistFix(env, want), k.setNow(pv)),
			"%s is %d now (%s), but the next boot applies %d: %s", k.key, live, k.proc, pn, desc))
	}
	return k.with(checks.Passf("%s is %d (%s); %s", k.key, live, k.proc, desc))
}

// checkBoolKnob judges a 0/1 sysctl that must read want now and after
// the next boot. what says what a wrong value breaks.
func checkBoolKnob(env *checks.Env, k knob, want, what string) checks.Result {
	pv, pset := k.persisted()
	persistOK := pset && pv == want
	switch {
	case k.live != want && k.live != "0" && k.live != "1":
		return k.with(checks.Warnf(k.setNow(want), "%s is %q (%s), not 0 or 1; want %s", k.key, k.live, k.proc, want))
	case k.live != want:
		fix := k.setNow(want)
		if !persistOK {
			fix += "\nthen persist it: " + k.persistFix(env, want)
		}
		return k.with(checks.Failf(fix, "%s is %s (%s): %s; %s", k.key, k.live, k.proc, what, k.describe()))
	case pset && pv != want:
		return k.with(checks.Failf(k.persistFix(env, want),
			"%s is %s now (%s), but %s persists %s: after the next boot %s%s", k.key, k.live, k.proc, k.res.Final.Where(), pv, what, k.tail()))
	}
	return k.with(checks.Passf("%s is %s (%s); %s", k.key, k.live, k.proc, k.describe()))
}

func checkUnprivilegedClone(_ context.Context, env *checks.Env) checks.Result {
	k := loadKnob(env, "kernel.unprivileged_userns_clone")
	switch {
	case k.absent():
		return k.with(checks.Skipf("%s does not exist: this kernel has no Debian/Arch unprivileged_userns_clone switch (mainline kernels let unprivileged users create user namespaces, limited by user.max_user_namespaces)", k.proc))
	case k.liveErr != nil:
		return k.liveWarn("")
	}
	return checkBoolKnob(env, k, "1", "unprivileged users cannot create user namespaces, so rootless containers fail to start")
}

// noUserNSLimit names the running kernel when it predates
// user.max_user_namespaces (4.9 upstream, 3.10.0-693 on RHEL/CentOS 7), so
// that a missing knob is expected rather than unreadable; "" otherwise.
func noUserNSLimit(env *checks.Env) string {
	rel := checks.KernelRelease(env)
	if build, el7, err := versions.EL7Build(rel); el7 {
		if err == nil && build < versions.EL7Build74 {
			return fmt.Sprintf("kernel %s (RHEL/CentOS 7 before 7.4)", rel)
		}
		return ""
	}
	if v, err := versions.Kernel(rel); err == nil && !v.AtLeast("4.9") {
		return fmt.Sprintf("kernel %s (before 4.9)", rel)
	}
	return ""
}
