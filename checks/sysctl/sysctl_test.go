package sysctl

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

const maxNS = "/proc/sys/user/max_user_namespaces"

// Debian's /etc/sysctl.conf template, all comments.
const debianSysctlConf = `#
# /etc/sysctl.conf - Configuration file for setting system variables
# See /etc/sysctl.d/ for additional system variables.
# See sysctl.conf (5) for information.
#

#kernel.domainname = example.com
`

const cisHardening = `# CIS Benchmark: disable user namespaces
kernel.yama.ptrace_scope = 1
user.max_user_namespaces = 0
`

func TestMaxUserNamespaces(t *testing.T) {
	tests := []struct {
		name   string
		files  checkstest.Files
		target checks.Target
		want   checkstest.Want
		// persistedAt is the evidence "persisted_at" ("" = none).
		persistedAt string
		mentions    int
	}{
		{"live 0, nothing persisted (EL7 default)", checkstest.Files{maxNS: "0\n"}, checks.Docker,
			checkstest.Want{Status: checks.Fail, Msg: []string{"is 0 (/proc/sys/user/max_user_namespaces)", "ENOSPC", "kernel default applies"},
				Remedy: []string{"sysctl -w user.max_user_namespaces=28633", "echo 'user.max_user_namespaces = 28633' > /etc/sysctl.d/99-usernsctl.conf"}}, "", 0},
		{"CIS file persists 0", checkstest.Files{maxNS: "15000\n", "/etc/sysctl.d/60-cis.conf": cisHardening, "/etc/sysctl.conf": debianSysctlConf}, checks.Docker,
			checkstest.Want{Status: checks.Fail, Msg: []string{"is 15000 now", "/etc/sysctl.d/60-cis.conf:3 persists 0", "next boot"},
				Remedy: []string{"echo 'user.max_user_namespaces = 15000' > /etc/sysctl.d/99-usernsctl.conf"}}, "/etc/sysctl.d/60-cis.conf:3", 1},
		{"a later vendor file wins over a drop-in", checkstest.Files{maxNS: "15000\n", "/usr/lib/sysctl.d/99-zz-hardening.conf": cisHardening}, checks.Docker,
			checkstest.Want{Status: checks.Fail, Msg: []string{"/usr/lib/sysctl.d/99-zz-hardening.conf:3 persists 0"},
				Remedy: []string{"edit /usr/lib/sysctl.d/99-zz-hardening.conf line 3 to read `user.max_user_namespaces = 15000`", "would not win"}}, "/usr/lib/sysctl.d/99-zz-hardening.conf:3", 1},
		{"sysctl.conf persists 0 and wins", checkstest.Files{maxNS: "0\n", "/etc/sysctl.d/50-ok.conf": "user.max_user_namespaces = 28633\n", "/etc/sysctl.conf": "user/max_user_namespaces=0\n"}, checks.Docker,
			checkstest.Want{Status: checks.Fail, Msg: []string{"/etc/sysctl.conf:1 persists 0", "it overrides /etc/sysctl.d/50-ok.conf:1: user.max_user_namespaces = 28633"},
				Remedy: []string{"sysctl -w user.max_user_namespaces=28633", "edit /etc/sysctl.conf line 1"}}, "/etc/sysctl.conf:1", 2},
		{"existing drop-in is edited, not overwritten", checkstest.Files{maxNS: "7\n", "/etc/sysctl.d/99-usernsctl.conf": "kernel.unprivileged_userns_clone = 1\n", "/run/sysctl.d/10-x.conf": "user.max_user_namespaces=0\n"}, checks.Docker,
			checkstest.Want{Status: checks.Fail, Remedy: []string{"set `user.max_user_namespaces = 7` in /etc/sysctl.d/99-usernsctl.conf"}}, "/run/sysctl.d/10-x.conf:1", 1},
		{"/etc masks /usr/lib by name with /dev/null", checkstest.Files{maxNS: "15000\n", "/usr/lib/sysctl.d/60-cis.conf": cisHardening, "/etc/sysctl.d/60-cis.conf": "-> /dev/null"}, checks.Docker,
			checkstest.Want{Status: checks.Pass, Msg: []string{"is 15000", "no sysctl file sets it"}}, "", 0},
		{"/etc masks /usr/lib by name with an empty file", checkstest.Files{maxNS: "15000\n", "/usr/lib/sysctl.d/60-cis.conf": cisHardening, "/etc/sysctl.d/60-cis.conf": ""}, checks.Docker,
			checkstest.Want{Status: checks.Pass}, "", 0},
		{"a -key line cancels", checkstest.Files{maxNS: "15000\n", "/usr/lib/sysctl.d/60-cis.conf": cisHardening, "/etc/sysctl.d/70-undo.conf": "-user.max_user_namespaces\n"}, checks.Docker,
			checkstest.Want{Status: checks.Pass, Msg: []string{"/etc/sysctl.d/70-undo.conf:1 cancels it"}}, "", 2},
		{"persisted equals live", checkstest.Files{maxNS: "28633\n", "/etc/sysctl.d/99-usernsctl.conf": "user.max_user_namespaces = 28633\n"}, checks.Rootless,
			checkstest.Want{Status: checks.Pass, Msg: []string{"/etc/sysctl.d/99-usernsctl.conf:1 persists 28633"}}, "/etc/sysctl.d/99-usernsctl.conf:1", 1},
		{"persisted differs", checkstest.Files{maxNS: "63432\n", "/etc/sysctl.d/99-usernsctl.conf": "user.max_user_namespaces = 28633\n"}, checks.Docker,
			checkstest.Want{Status: checks.Warn, Msg: []string{"is 63432 now", "next boot applies 28633"}, Remedy: []string{"sysctl -w user.max_user_namespaces=28633"}}, "/etc/sysctl.d/99-usernsctl.conf:1", 1},
		{"rootless below 1024", checkstest.Files{maxNS: "100\n"}, checks.Rootless,
			checkstest.Want{Status: checks.Warn, Msg: []string{"below 1024", "rootlesskit"}, Remedy: []string{"sysctl -w user.max_user_namespaces=28633"}}, "", 0},
		{"rootless persisted below 1024", checkstest.Files{maxNS: "28633\n", "/etc/sysctl.conf": "user.max_user_namespaces = 100\n"}, checks.Rootless,
			checkstest.Want{Status: checks.Warn, Msg: []string{"/etc/sysctl.conf:1 persists 100"}, Remedy: []string{"edit /etc/sysctl.conf line 1 to read `user.max_user_namespaces = 28633`"}}, "/etc/sysctl.conf:1", 1},
		{"100 is plenty for docker", checkstest.Files{maxNS: "100\n"}, checks.Docker, checkstest.Want{Status: checks.Pass}, "", 0},
		{"persisted value not a number", checkstest.Files{maxNS: "100\n", "/etc/sysctl.d/x.conf": "user.max_user_namespaces = lots\n"}, checks.Docker,
			checkstest.Want{Status: checks.Warn, Msg: []string{`persists "lots"`}}, "/etc/sysctl.d/x.conf:1", 1},
		{"no live value (old kernel)", checkstest.Files{}, checks.Docker,
			checkstest.Want{Status: checks.Warn, Msg: []string{"could not read the live user.max_user_namespaces", "before 4.9"}}, "", 0},
		{"no such knob on CentOS 7.3", checkstest.Files{"/proc/sys/kernel/osrelease": "3.10.0-514.26.2.el7.x86_64\n"}, checks.Docker,
			checkstest.Want{Status: checks.Skip, Msg: []string{"kernel 3.10.0-514.26.2.el7.x86_64 (RHEL/CentOS 7 before 7.4) has no limit"}}, "", 0},
		{"no such knob on 4.4", checkstest.Files{"/proc/sys/kernel/osrelease": "4.4.0-210-generic\n"}, checks.Docker,
			checkstest.Want{Status: checks.Skip, Msg: []string{"kernel 4.4.0-210-generic (before 4.9)"}}, "", 0},
		{"knob missing on a kernel that has it", checkstest.Files{"/proc/sys/kernel/osrelease": "3.10.0-1160.el7.x86_64\n"}, checks.Docker,
			checkstest.Want{Status: checks.Warn, Msg: []string{"could not read the live user.max_user_namespaces"}}, "", 0},
		{"live value is a directory", checkstest.Files{maxNS: "<dir>"}, checks.Docker,
			checkstest.Want{Status: checks.Warn, Msg: []string{"is a directory"}}, "", 0},
		{"live value not a number", checkstest.Files{maxNS: "\x00\x01"}, checks.Docker, checkstest.Want{Status: checks.Warn, Msg: []string{"not a number"}}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheck(t, checkstest.Setup{Files: tt.files, Target: tt.target}.Env(t), "sysctl.max_user_namespaces")
			tt.want.Assert(t, r)
			if got, _ := r.Evidence["persisted_at"].(string); got != tt.persistedAt {
				t.Errorf("persisted_at = %q, want %q", got, tt.persistedAt)
			}
			if got, _ := r.Evidence["mentions"].([]string); len(got) != tt.mentions {
				t.Errorf("mentions = %q, want %d", got, tt.mentions)
			}
		})
	}
}

// Debian and Ubuntu link /etc/sysctl.d/99-sysctl.conf to ../sysctl.conf;
// a snapshot copies the link as a file. Both count once, as sysctl.conf.
func TestSysctlConfLinkCountedOnce(t *testing.T) {
	conf := debianSysctlConf + "user.max_user_namespaces = 0\n"
	for name, link := range map[string]string{
		"relative link": "-> ../sysctl.conf",
		"copied file":   conf,
	} {
		t.Run(name, func(t *testing.T) {
			env := checkstest.Setup{Files: checkstest.Files{maxNS: "0\n", "/etc/sysctl.conf": conf, "/etc/sysctl.d/99-sysctl.conf": link}}.Env(t)
			r := runCheck(t, env, "sysctl.max_user_namespaces")
			checkstest.Want{Status: checks.Fail, Msg: []string{"/etc/sysctl.conf:8 persists 0"}, NoMsg: []string{"99-sysctl.conf"},
				Remedy: []string{"edit /etc/sysctl.conf line 8"}}.Assert(t, r)
			if got := r.Evidence["mentions"]; !reflect.DeepEqual(got, []string{"/etc/sysctl.conf:8: user.max_user_namespaces = 0"}) {
				t.Errorf("mentions = %v", got)
			}
			if got := r.Evidence["sysctl_conf_aliases"]; !reflect.DeepEqual(got, []string{"/etc/sysctl.d/99-sysctl.conf"}) {
				t.Errorf("aliases = %v", got)
			}
		})
	}
}

func TestSysctlBadFiles(t *testing.T) {
	tests := []struct {
		name  string
		files checkstest.Files
		msg   []string
	}{
		{"binary file", checkstest.Files{"/etc/sysctl.d/50-junk.conf": "a.b = 1\n\x7fELF\x00\x01"}, []string{"/etc/sysctl.d/50-junk.conf:2:5: NUL byte"}},
		{"10 MB line", checkstest.Files{"/etc/sysctl.d/50-long.conf": strings.Repeat("x", 10<<20)}, []string{"/etc/sysctl.d/50-long.conf:1: line longer than 1 MiB"}},
		{"directory as sysctl.conf", checkstest.Files{"/etc/sysctl.conf": "<dir>"}, []string{"/etc/sysctl.conf: is a directory"}},
		{"skipped line about the key", checkstest.Files{"/etc/sysctl.d/50-typo.conf": "user.max_user_namespaces 0\n"}, []string{"/etc/sysctl.d/50-typo.conf:1:1:", "not an assignment"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files[maxNS] = "15000\n"
			r := runCheck(t, checkstest.Setup{Files: tt.files}.Env(t), "sysctl.max_user_namespaces")
			checkstest.Want{Status: checks.Pass, Msg: append(tt.msg, "could not use all sysctl files")}.Assert(t, r)
			if _, ok := r.Evidence["sysctl_file_problems"]; !ok {
				t.Error("no sysctl_file_problems evidence")
			}
		})
	}
	// A skipped line about another key stays out of the message.
	r := runCheck(t, checkstest.Setup{Files: checkstest.Files{maxNS: "15000\n", "/etc/sysctl.d/50-x.conf": "kernel.foo\n"}}.Env(t), "sysctl.max_user_namespaces")
	checkstest.Want{Status: checks.Pass, NoMsg: []string{"could not use"}}.Assert(t, r)
}

func TestUnprivilegedUsernsClone(t *testing.T) {
	const knob = "/proc/sys/kernel/unprivileged_userns_clone"
	tests := []struct {
		name  string
		files checkstest.Files
		want  checkstest.Want
	}{
		{"mainline kernel", checkstest.Files{}, checkstest.Want{Status: checks.Skip, Msg: []string{knob, "mainline"}}},
		{"on", checkstest.Files{knob: "1\n"}, checkstest.Want{Status: checks.Pass}},
		{"off", checkstest.Files{knob: "0\n"}, checkstest.Want{Status: checks.Fail, Msg: []string{"is 0 (" + knob + ")", "rootless"},
			Remedy: []string{"sysctl -w kernel.unprivileged_userns_clone=1", "echo 'kernel.unprivileged_userns_clone = 1' > /etc/sysctl.d/99-usernsctl.conf"}}},
		{"off now, persisted on", checkstest.Files{knob: "0\n", "/etc/sysctl.d/50-userns.conf": "kernel.unprivileged_userns_clone=1\n"},
			checkstest.Want{Status: checks.Fail, Remedy: []string{"sysctl -w kernel.unprivileged_userns_clone=1"}}},
		{"on now, off after boot", checkstest.Files{knob: "1\n", "/etc/sysctl.d/50-hardening.conf": "kernel.unprivileged_userns_clone = 0\n"},
			checkstest.Want{Status: checks.Fail, Msg: []string{"/etc/sysctl.d/50-hardening.conf:1 persists 0", "next boot"}}},
		{"junk", checkstest.Files{knob: "2\n"}, checkstest.Want{Status: checks.Warn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheck(t, checkstest.Setup{Files: tt.files, Target: checks.Rootless}.Env(t), "sysctl.unprivileged_userns_clone")
			tt.want.Assert(t, r)
			if tt.name == "off now, persisted on" && strings.Contains(r.Remedy, "persist") {
				t.Errorf("remedy persists what is already persisted: %s", r.Remedy)
			}
		})
	}
}

func TestRootlessOnlyTargets(t *testing.T) {
	for _, c := range Checkers() {
		i := c.Info()
		rootlessOnly := i.ID == "sysctl.unprivileged_userns_clone" || i.ID == "sysctl.apparmor_userns"
		for _, target := range checks.AllTargets {
			if want := !rootlessOnly || target == checks.Rootless; i.AppliesTo(target) != want {
				t.Errorf("%s applies to %s: %v, want %v", i.ID, target, !want, want)
			}
		}
	}
}

func ExampleCheckers() {
	for _, c := range Checkers() {
		fmt.Println(c.Info().ID)
	}
	// Output:
	// sysctl.max_user_namespaces
	// sysctl.unprivileged_userns_clone
	// sysctl.apparmor_userns
}
