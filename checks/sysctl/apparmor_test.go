package sysctl

import (
	"fmt"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

const restrictKnob = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"

// Ubuntu 24.04's /etc/apparmor.d/rootlesskit.
const ubuntuRootlesskitProfile = `# This profile allows everything and only exists to give the
# application a name instead of having the label "unconfined"

abi <abi/4.0>,
include <tunables/global>

profile rootlesskit /usr/bin/rootlesskit flags=(unconfined) {
  userns,

  # Site-specific additions and overrides. See local/README for details.
  include if exists <local/rootlesskit>
}
`

func TestAppArmorUserns(t *testing.T) {
	withoutUserns := strings.Replace(ubuntuRootlesskitProfile, "  userns,\n", "", 1)
	tests := []struct {
		name  string
		files checkstest.Files
		want  checkstest.Want
	}{
		{"no such knob", checkstest.Files{}, checkstest.Want{Status: checks.Skip, Msg: []string{restrictKnob}}},
		{"not restricted", checkstest.Files{restrictKnob: "0\n"}, checkstest.Want{Status: checks.Pass}},
		{"Ubuntu 24.04 with the stock profile", checkstest.Files{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": ubuntuRootlesskitProfile, "/etc/apparmor.d/firefox": "profile firefox /usr/lib/firefox/firefox{,*[^s][^h]} flags=(unconfined) {\n  userns,\n}\n"},
			checkstest.Want{Status: checks.Pass, Msg: []string{"/usr/bin/rootlesskit (profile /etc/apparmor.d/rootlesskit line 7, `userns,` at /etc/apparmor.d/rootlesskit:8)"}}},
		{"userns granted in local/", checkstest.Files{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": withoutUserns, "/etc/apparmor.d/local/rootlesskit": "# local\nuserns,\n"},
			checkstest.Want{Status: checks.Pass, Msg: []string{"/etc/apparmor.d/local/rootlesskit:2"}}},
		{"static install in /usr/local/bin", checkstest.Files{restrictKnob: "1\n", "/usr/local/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": ubuntuRootlesskitProfile},
			checkstest.Want{Status: checks.Fail, Msg: []string{"/usr/local/bin/rootlesskit (no profile attaches to it)", "Permission denied"},
				Remedy: []string{"cat > /etc/apparmor.d/usr.local.bin.rootlesskit <<'EOF'", "profile usr.local.bin.rootlesskit /usr/local/bin/rootlesskit flags=(unconfined) {\n  userns,", "apparmor_parser -r /etc/apparmor.d/usr.local.bin.rootlesskit"}}},
		{"profile without userns", checkstest.Files{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin", "/etc/apparmor.d/rootlesskit": withoutUserns},
			checkstest.Want{Status: checks.Fail, Msg: []string{"profile /etc/apparmor.d/rootlesskit line 7 has no `userns,` rule"},
				Remedy: []string{"add the line `  userns,` inside the profile at /etc/apparmor.d/rootlesskit line 7"}}},
		{"deny userns does not grant", checkstest.Files{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": strings.Replace(ubuntuRootlesskitProfile, "  userns,", "  deny userns,", 1)},
			checkstest.Want{Status: checks.Fail}},
		{"disabled profile", checkstest.Files{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": ubuntuRootlesskitProfile, "/etc/apparmor.d/disable/rootlesskit": "-> ../rootlesskit"},
			checkstest.Want{Status: checks.Fail, Msg: []string{"no profile attaches"}}},
		{"not installed yet", checkstest.Files{restrictKnob: "1\n"},
			checkstest.Want{Status: checks.Fail, Msg: []string{"not installed yet"}, Remedy: []string{"/etc/apparmor.d/usr.bin.rootlesskit"}}},
		{"AppArmor disabled", checkstest.Files{restrictKnob: "1\n", "/sys/module/apparmor/parameters/enabled": "N\n"},
			checkstest.Want{Status: checks.Pass, Msg: []string{"AppArmor is disabled"}}},
		{"off now, on after boot", checkstest.Files{restrictKnob: "0\n", "/etc/sysctl.d/20-apparmor.conf": "kernel.apparmor_restrict_unprivileged_userns = 1\n"},
			checkstest.Want{Status: checks.Warn, Msg: []string{"/etc/sysctl.d/20-apparmor.conf:1 persists 1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheck(t, checkstest.Setup{Files: tt.files, Target: checks.Rootless}.Env(t), "sysctl.apparmor_userns")
			tt.want.Assert(t, r)
			if r.Status == checks.Fail && !strings.Contains(r.Remedy, "setting the sysctl to 0 lifts the protection") {
				t.Errorf("remedy does not warn off the global flip: %s", r.Remedy)
			}
		})
	}
}

func TestAttachMatches(t *testing.T) {
	for i, tt := range []struct {
		pattern, path string
		want          bool
	}{
		{"/usr/bin/rootlesskit", "/usr/bin/rootlesskit", true},
		{"/usr/{bin,sbin}/rootlesskit", "/usr/sbin/rootlesskit", true},
		{"/usr/{bin,sbin}/rootlesskit", "/usr/lib/rootlesskit", false},
		{"/opt/*/rootlesskit", "/opt/docker/rootlesskit", true},
		{"/opt/*/rootlesskit", "/opt/a/b/rootlesskit", false},
		{"/opt/**/rootlesskit", "/opt/a/b/rootlesskit", true},
		{"/usr/bin/rootlesskit", "/usr/local/bin/rootlesskit", false},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if got := attachMatches(tt.pattern, tt.path); got != tt.want {
				t.Errorf("attachMatches(%q, %q) = %v", tt.pattern, tt.path, got)
			}
		})
	}
}
