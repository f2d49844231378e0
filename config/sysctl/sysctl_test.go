package sysctl

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// systemd's /usr/lib/sysctl.d/50-default.conf (excerpt): globs, exclusions
// and "-" prefixes.
const systemdDefault = `# Source route verification
net.ipv4.conf.default.rp_filter = 2
net.ipv4.conf.*.rp_filter = 2
-net.ipv4.conf.all.rp_filter

# ping(8) without CAP_NET_ADMIN and CAP_NET_RAW
-net.ipv4.ping_group_range = 0 2147483647

# Fair Queue CoDel packet scheduler to fight bufferbloat
-net.core.default_qdisc = fq_codel

fs.protected_hardlinks = 1
fs.protected_symlinks = 1
`

// Fedora's 50-coredump.conf: a value with spaces and a pipe.
const fedoraCoredump = `# See sysctl.d(5) for the description of the files in this directory,
kernel.core_pattern=|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h
kernel.core_pipe_limit=16
`

// RHEL 7.6 /etc/sysctl.conf after an operator enabled user namespaces.
const rhel7Conf = `# sysctl settings are defined through files in
# /usr/lib/sysctl.d/, /run/sysctl.d/, and /etc/sysctl.d/.
#
# For more information, see sysctl.conf(5) and sysctl.d(5).
user.max_user_namespaces=15000
`

// Ubuntu's /etc/sysctl.d/10-kernel-hardening.conf (excerpt): a commented
// out assignment is not an assignment.
const ubuntuHardening = `# These settings are specific to hardening the kernel itself from attack
# from userspace, rather than protecting userspace from other malicious
# userspace things.
kernel.kptr_restrict = 1

# dmesg_restrict defaults to 1 via CONFIG_SECURITY_DMESG_RESTRICT, only
# uncomment the following line to disable.
# kernel.dmesg_restrict = 0
`

// RHEL 9's /usr/lib/sysctl.d/50-redhat.conf (excerpt).
const rhel9RedHat = `# Kernel sysctl configuration file for Red Hat Linux
#
# For binary values, 0 is disabled, 1 is enabled.  See sysctl(8) and
# sysctl.conf(5) for more details.

# Controls the System Request debugging functionality of the kernel
kernel.sysrq = 16

# Controls whether core dumps will append the PID to the core filename.
# Useful for debugging multi-threaded applications.
kernel.core_uses_pid = 1
`

// A CIS hardening profile.
const cis = `; CIS benchmark 1.5.x
	user.max_user_namespaces = 0
kernel.yama.ptrace_scope = 1
`

func parse(t *testing.T, name, text string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(text), name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseRealFiles(t *testing.T) {
	f := parse(t, "/usr/lib/sysctl.d/50-default.conf", systemdDefault)
	if len(f.Problems) != 0 {
		t.Fatalf("problems: %v", f.Problems)
	}
	var got []string
	for _, e := range f.Entries {
		got = append(got, e.String())
	}
	want := []string{
		"/usr/lib/sysctl.d/50-default.conf:2: net.ipv4.conf.default.rp_filter = 2",
		"/usr/lib/sysctl.d/50-default.conf:3: net.ipv4.conf.*.rp_filter = 2",
		"/usr/lib/sysctl.d/50-default.conf:4: -net.ipv4.conf.all.rp_filter",
		"/usr/lib/sysctl.d/50-default.conf:7: net.ipv4.ping_group_range = 0 2147483647",
		"/usr/lib/sysctl.d/50-default.conf:10: net.core.default_qdisc = fq_codel",
		"/usr/lib/sysctl.d/50-default.conf:12: fs.protected_hardlinks = 1",
		"/usr/lib/sysctl.d/50-default.conf:13: fs.protected_symlinks = 1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e := f.Entries[1]; !e.Glob || !e.HasValue {
		t.Errorf("glob entry = %+v", e)
	}
	if e := f.Entries[2]; e.HasValue || !e.IgnoreErrors || e.Glob {
		t.Errorf("exclusion entry = %+v", e)
	}
	if e := f.Entries[3]; !e.IgnoreErrors || e.Value != "0 2147483647" {
		t.Errorf("ignore-errors entry = %+v", e)
	}

	f = parse(t, "/usr/lib/sysctl.d/50-coredump.conf", fedoraCoredump)
	if e := f.Entries[0]; e.Key != "kernel.core_pattern" || e.Value != "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h" || e.Line != 2 {
		t.Errorf("coredump entry = %+v", e)
	}

	f = parse(t, "/etc/sysctl.d/10-kernel-hardening.conf", ubuntuHardening)
	if len(f.Entries) != 1 || f.Entries[0].Key != "kernel.kptr_restrict" || f.Entries[0].Line != 4 || len(f.Problems) != 0 {
		t.Errorf("ubuntu hardening: %+v %v", f.Entries, f.Problems)
	}

	f = parse(t, "/usr/lib/sysctl.d/50-redhat.conf", rhel9RedHat)
	if len(f.Entries) != 2 || f.Entries[1].String() != "/usr/lib/sysctl.d/50-redhat.conf:11: kernel.core_uses_pid = 1" {
		t.Errorf("rhel9: %+v", f.Entries)
	}

	f = parse(t, "/etc/sysctl.conf", rhel7Conf)
	if len(f.Entries) != 1 || f.Entries[0].String() != "/etc/sysctl.conf:5: user.max_user_namespaces = 15000" {
		t.Errorf("rhel7: %+v", f.Entries)
	}

	f = parse(t, "/etc/sysctl.d/60-cis.conf", cis)
	if e := f.Entries[0]; e.Key != "user.max_user_namespaces" || e.Value != "0" || e.Line != 2 {
		t.Errorf("CIS entry = %+v", e)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"user.max_user_namespaces":            "user.max_user_namespaces",
		"user/max_user_namespaces":            "user.max_user_namespaces",
		"/user/max_user_namespaces":           "user.max_user_namespaces",
		"net/ipv4/conf/enp3s0.200/forwarding": "net.ipv4.conf.enp3s0/200.forwarding",
		"net.ipv4.conf.enp3s0/200.forwarding": "net.ipv4.conf.enp3s0/200.forwarding",
		"kernel":                              "kernel",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ProcPath("net.ipv4.conf.enp3s0/200.forwarding"); got != "/proc/sys/net/ipv4/conf/enp3s0.200/forwarding" {
		t.Errorf("ProcPath = %q", got)
	}
	if got := ProcPath("user/max_user_namespaces"); got != "/proc/sys/user/max_user_namespaces" {
		t.Errorf("ProcPath = %q", got)
	}
}

func TestParseProblemsAreSkippedLines(t *testing.T) {
	f, err := Parse(strings.NewReader("user.max_user_namespaces 0\n = 3\nok.key = 1\nbad.key = caf\xe9\n# caf\xe9 in a comment is fine\n"), "/etc/sysctl.d/x.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 1 || f.Entries[0].Key != "ok.key" {
		t.Errorf("entries = %+v", f.Entries)
	}
	var got []string
	for _, p := range f.Problems {
		got = append(got, p.Error())
	}
	want := []string{
		`/etc/sysctl.d/x.conf:1:1: "user.max_user_namespaces 0" is not an assignment (want key = value): line skipped`,
		`/etc/sysctl.d/x.conf:2:2: no key before '=': line skipped`,
		`/etc/sysctl.d/x.conf:4:14: invalid UTF-8: line skipped`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseNotASysctlFile(t *testing.T) {
	for name, tt := range map[string]struct {
		in        string
		line, col int
		entries   int
	}{
		"binary":     {"a.b = 1\n\x7fELF\x02\x01\x01\x00\x00", 2, 8, 1},
		"10 MB line": {"a.b = 1\n" + strings.Repeat("x", 10<<20) + "\nc.d = 2\n", 2, 0, 1},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := Parse(strings.NewReader(tt.in), "/etc/sysctl.conf")
			var e *errs.Input
			if !errors.As(err, &e) || e.Line != tt.line || e.Column != tt.col || e.File != "/etc/sysctl.conf" {
				t.Fatalf("got %v, want an error at line %d col %d", err, tt.line, tt.col)
			}
			if f == nil || len(f.Entries) != tt.entries {
				t.Errorf("entries before the error not kept: %+v", f)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	names := map[string][]string{
		"/usr/lib/sysctl.d":       {"50-default.conf", "10-apparmor.conf", "99-hardening.conf", "README"},
		"/lib/sysctl.d":           {"50-default.conf", "50-pid-max.conf"},
		"/etc/sysctl.d":           {"99-hardening.conf", "99-sysctl.conf", ".hidden.conf", "60-cis.conf"},
		"/run/sysctl.d":           {"10-apparmor.conf"},
		"/usr/local/lib/sysctl.d": {"70-local.conf"},
		"/not/a/sysctl/dir":       {"00-first.conf"},
	}
	got := Order(names, true)
	want := []string{
		"/run/sysctl.d/10-apparmor.conf",
		"/usr/lib/sysctl.d/50-default.conf",
		"/lib/sysctl.d/50-pid-max.conf",
		"/etc/sysctl.d/60-cis.conf",
		"/usr/local/lib/sysctl.d/70-local.conf",
		"/etc/sysctl.d/99-hardening.conf",
		"/etc/sysctl.d/99-sysctl.conf",
		"/etc/sysctl.conf",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := Order(nil, false); len(got) != 0 {
		t.Errorf("Order(nil) = %q", got)
	}
}

func TestAppliedAfter(t *testing.T) {
	const drop = "/etc/sysctl.d/99-usernsctl.conf"
	for i, tt := range []struct {
		a, b string
		want bool
	}{
		{"/usr/lib/sysctl.d/99-zz.conf", drop, true},
		{"/usr/lib/sysctl.d/60-cis.conf", drop, false},
		{Conf, drop, true},
		{drop, Conf, false},
		{"/usr/lib/sysctl.d/99-usernsctl.conf", drop, false},
		{drop, drop, false},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if got := AppliedAfter(tt.a, tt.b); got != tt.want {
				t.Errorf("AppliedAfter(%s, %s) = %v", tt.a, tt.b, got)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	set := &Set{Files: []*File{
		parse(t, "/usr/lib/sysctl.d/50-default.conf", systemdDefault),
		parse(t, "/etc/sysctl.d/60-cis.conf", cis),
		parse(t, "/etc/sysctl.d/70-glob.conf", "user.max_*_namespaces = 5\nnet.ipv4.conf.*.rp_filter = 1\n"),
		parse(t, Conf, rhel7Conf),
	}}

	// The explicit line in sysctl.conf wins over the earlier CIS line and
	// over a later-sorted glob.
	r := set.Lookup("user/max_user_namespaces")
	if r.Final == nil || r.Final.Value != "15000" || r.Final.Where() != "/etc/sysctl.conf:5" {
		t.Errorf("Final = %+v", r.Final)
	}
	var where []string
	for _, m := range r.Mentions {
		where = append(where, m.Where())
	}
	if got := strings.Join(where, " "); got != "/etc/sysctl.d/60-cis.conf:2 /etc/sysctl.d/70-glob.conf:1 /etc/sysctl.conf:5" {
		t.Errorf("Mentions = %s", got)
	}

	// Without an explicit line, the last glob wins...
	r = set.Lookup("net.ipv4.conf.eth0.rp_filter")
	if r.Final == nil || r.Final.Where() != "/etc/sysctl.d/70-glob.conf:2" {
		t.Errorf("glob Final = %+v", r.Final)
	}
	// ...but an explicit "-key" shields the key from globs.
	r = set.Lookup("net.ipv4.conf.all.rp_filter")
	if r.Final != nil || len(r.Mentions) != 3 {
		t.Errorf("excluded key: Final = %+v, Mentions = %v", r.Final, r.Mentions)
	}
	// An explicit line beats a glob even when the glob comes later.
	r = set.Lookup("net.ipv4.conf.default.rp_filter")
	if r.Final == nil || r.Final.Where() != "/usr/lib/sysctl.d/50-default.conf:2" {
		t.Errorf("explicit vs glob: Final = %+v", r.Final)
	}
	// A glob does not cross a separator.
	if r := set.Lookup("net.ipv4.conf.eth0.x.rp_filter"); r.Final != nil {
		t.Errorf("glob crossed a separator: %+v", r.Final)
	}
	if r := set.Lookup("kernel.unprivileged_userns_clone"); r.Final != nil || len(r.Mentions) != 0 {
		t.Errorf("unset key: %+v", r)
	}

	// A later "-key" cancels an earlier assignment.
	set.Files = set.Files[:3]
	set.Files = append(set.Files, parse(t, "/etc/sysctl.d/99-z.conf", "-user.max_user_namespaces\n"))
	if r := set.Lookup("user.max_user_namespaces"); r.Final != nil {
		t.Errorf("cancelled key still set: %+v", r.Final)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(systemdDefault))
	f.Add([]byte(cis))
	f.Add([]byte("-\n-=\n=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, _ := Parse(strings.NewReader(string(b)), "fuzz")
		if file == nil {
			t.Fatal("nil file")
		}
		s := &Set{Files: []*File{file}}
		for _, e := range file.Entries {
			s.Lookup(e.Key)
		}
	})
}
