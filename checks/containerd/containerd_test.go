package containerd

import (
	"context"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/probe"
)

// Real `containerd --version` outputs (formats.md).
const (
	v216  = `{"containerd --version": "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376\n"}`
	v219  = `{"containerd --version": "containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"}`
	v23   = `{"containerd --version": "containerd github.com/containerd/containerd/v2 v2.3.1 abcdef\n"}`
	v1620 = `{"containerd --version": "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n"}`
	v1724 = `{"containerd --version": "containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1\n"}`
	none  = `{}`
)

// fakeProber answers every probe with one result and remembers what it was
// asked (tests only).
type fakeProber struct {
	res   probe.Result
	asked []probe.Spec
}

func (f *fakeProber) Probe(_ context.Context, s probe.Spec) probe.Result {
	f.asked = append(f.asked, s)
	return f.res
}

type hostSpec struct {
	files    map[string]string
	commands string
	prober   probe.Prober
	target   checks.Target
	kube     string
}

// newEnv is a containerd host unless the spec names another target.
func newEnv(t *testing.T, s hostSpec) *checks.Env {
	t.Helper()
	if s.target == "" {
		s.target = checks.Containerd
	}
	return checkstest.Kube(t, checkstest.Env(t, s.target, s.files, s.commands, s.prober), s.kube)
}

func run1(t *testing.T, id string, env *checks.Env) checks.Result {
	t.Helper()
	return checkstest.Run(t, Checkers(), id, env)
}

const (
	cfgPath = cdconfig.DefaultPath
	v3main  = "version = 3\nimports = ['/etc/containerd/conf.d/*.toml']\n"
	unit    = "/lib/systemd/system/containerd.service"
)

func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   hostSpec
		status checks.Status
		want   []string
	}{
		{"no config", hostSpec{commands: v216}, checks.Pass,
			[]string{"no /etc/containerd/config.toml (default)", "defaults are in effect"}},
		{"no config but drop-ins", hostSpec{commands: v216, files: map[string]string{"/etc/containerd/conf.d/10-x.toml": "version = 3\n"}}, checks.Warn,
			[]string{"ignores /etc/containerd/conf.d/10-x.toml", "`version = 3`"}},
		{"--config in the unit, missing", hostSpec{commands: v216, files: map[string]string{
			unit: "[Service]\nExecStart=/usr/bin/containerd --config /etc/containerd/custom.toml\n"}}, checks.Fail,
			[]string{"/etc/containerd/custom.toml does not exist", unit + " line 2", "refuses to start"}},
		{"-c in a drop-in overrides", hostSpec{commands: v216, files: map[string]string{
			unit: "[Service]\nExecStart=/usr/bin/containerd\n",
			"/etc/systemd/system/containerd.service.d/override.conf": "[Service]\nExecStart=\nExecStart=/usr/local/bin/containerd -c /srv/ctrd.toml\n",
			"/srv/ctrd.toml": v3main}}, checks.Pass,
			[]string{"/srv/ctrd.toml (--config in /etc/systemd/system/containerd.service.d/override.conf line 3)", "version 3"}},
		{"syntax error", hostSpec{commands: v216, files: map[string]string{cfgPath: "version = 2\n\n[plugins]\n  foo bar\n"}}, checks.Fail,
			[]string{"config.toml:4:7: expected '=' after key", "row 4 column 7"}},
		{"binary", hostSpec{commands: v216, files: map[string]string{cfgPath: "\x7fELF\x02\x01\x01\x00"}}, checks.Fail,
			[]string{"config.toml:1:1", "invalid character"}},
		{"a directory", hostSpec{commands: v216, files: map[string]string{cfgPath + "/": ""}}, checks.Fail,
			[]string{"is a directory"}},
		{"version 1 under 2.x (field case 20)", hostSpec{commands: v216, files: map[string]string{cfgPath: "disabled_plugins = [\"cri\"]\n[plugins.cri]\n  sandbox_image = \"pause\"\n"}}, checks.Fail,
			[]string{"no `version` line", `invalid disabled plugin URI "cri" expect io.containerd.x.vx`, "containerd config migrate"}},
		{"version 1 under 1.6", hostSpec{commands: v1620, files: map[string]string{cfgPath: "[plugins.cri]\n  sandbox_image = \"pause\"\n"}}, checks.Warn,
			[]string{"version 1 config", "containerd 2.x will not read it"}},
		{"version 3 under 1.7", hostSpec{commands: v1724, files: map[string]string{cfgPath: "version = 3\n"}}, checks.Fail,
			[]string{"reads at most version 2", "unsupported config version"}},
		{"version 4 under 2.1", hostSpec{commands: v216, files: map[string]string{cfgPath: "version = 4\n"}}, checks.Fail,
			[]string{"reads at most version 3"}},
		{"version 4 under 2.3", hostSpec{commands: v23, files: map[string]string{cfgPath: "version = 4\n"}}, checks.Pass,
			[]string{"version 4"}},
		{"drop-in newer than main", hostSpec{commands: v216, files: map[string]string{
			cfgPath:                              "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n",
			"/etc/containerd/conf.d/10-new.toml": "version = 3\n"}}, checks.Fail,
			[]string{"10-new.toml (imported by /etc/containerd/config.toml) has version 3", "drop-in config version 3 higher than root config version 2"}},
		{"missing import", hostSpec{commands: v216, files: map[string]string{cfgPath: "version = 3\nimports = ['/etc/containerd/gone.toml']\n"}}, checks.Fail,
			[]string{"gone.toml (imported by /etc/containerd/config.toml)", "remove it from the imports"}},
		{"bad import", hostSpec{commands: v216, files: map[string]string{cfgPath: v3main, "/etc/containerd/conf.d/a.toml": "version = 3\nx = \n"}}, checks.Fail,
			[]string{"conf.d/a.toml:2:5", "row 2 column 5"}},
		{"imports resolved", hostSpec{commands: v219, files: map[string]string{cfgPath: v3main,
			"/etc/containerd/conf.d/b.toml": "version = 3\n", "/etc/containerd/conf.d/a.toml": "version = 2\n"}}, checks.Pass,
			[]string{"imports /etc/containerd/conf.d/a.toml, /etc/containerd/conf.d/b.toml", "containerd 2.1.9+unknown"}},
		{"version 2 under 2.x", hostSpec{commands: v216, files: map[string]string{cfgPath: "version = 2\n"}}, checks.Pass,
			[]string{"migrated to version 3 on every start"}},
		{"1.x import replaces a plugin table", hostSpec{commands: v1724, files: map[string]string{
			cfgPath:                          "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n[plugins.\"io.containerd.snapshotter.v1.overlayfs\"]\n  root_path = \"/data\"\n",
			"/etc/containerd/conf.d/10.toml": "version = 2\n[plugins.\"io.containerd.snapshotter.v1.overlayfs\"]\n  upperdir_label = true\n"}}, checks.Warn,
			[]string{`/etc/containerd/conf.d/10.toml's [plugins."io.containerd.snapshotter.v1.overlayfs"] replaces the whole table, dropping root_path set in /etc/containerd/config.toml`,
				"repeat root_path in /etc/containerd/conf.d/10.toml"}},
		{"containerd not installed", hostSpec{commands: none, files: map[string]string{cfgPath: "version = 2\n"}}, checks.Pass,
			[]string{"containerd (version unknown)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run1(t, "containerd.config", newEnv(t, tc.spec))
			checkstest.Expect(t, r, tc.status, tc.want...)
			if r.Evidence["path"] == nil || r.Evidence["merge_rule"] == nil {
				t.Errorf("evidence %v", r.Evidence)
			}
		})
	}
}

func TestConfigEvidenceListsImports(t *testing.T) {
	r := run1(t, "containerd.config", newEnv(t, hostSpec{commands: v216, files: map[string]string{
		cfgPath: v3main, "/etc/containerd/conf.d/a.toml": "version = 3\n"}}))
	if im, _ := r.Evidence["imports"].([]string); len(im) != 1 || im[0] != "/etc/containerd/conf.d/a.toml" {
		t.Errorf("imports evidence %v", r.Evidence["imports"])
	}
	if !strings.Contains(r.Evidence["merge_rule"].(string), "2.x") || r.Evidence["merge_rule_from"] != "containerd 2.1.4" {
		t.Errorf("merge rule evidence %v / %v", r.Evidence["merge_rule"], r.Evidence["merge_rule_from"])
	}
}

func TestSnapshotter2x(t *testing.T) {
	ok := &fakeProber{res: probe.Result{Ran: true, OK: true}}
	bad := func() *fakeProber {
		return &fakeProber{res: probe.Result{Ran: true, OK: false, Step: "stat through overlay", Error: "owner 0, want 666"}}
	}
	slowDropIn := map[string]string{
		cfgPath: v3main,
		"/etc/containerd/conf.d/99-usernsctl.toml": "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  slow_chown = true\n",
	}
	t.Run("probe ok", func(t *testing.T) {
		p := &fakeProber{res: ok.res}
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: p}))
		checkstest.Expect(t, r, checks.Pass, "works on the filesystem of /var/lib/containerd (probed)")
		if len(p.asked) != 1 || p.asked[0] != (probe.Spec{Kind: probe.OverlayIdmap, Path: "/var/lib/containerd"}) {
			t.Errorf("probes asked %v", p.asked)
		}
	})
	t.Run("probe fails, no slow_chown (field case 19)", func(t *testing.T) {
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: bad(), files: map[string]string{cfgPath: v3main}}))
		checkstest.Expect(t, r, checks.Fail, "probe failed: stat through overlay: owner 0, want 666", "slow_chown is not set",
			"doesn't support idmap mounts on this host, configure `slow_chown` to allow a slower and expensive fallback",
			"usernsctl apply --target containerd --slow-chown on", "chowned per pod")
	})
	t.Run("probe fails, slow_chown in a drop-in", func(t *testing.T) {
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: bad(), files: slowDropIn}))
		checkstest.Expect(t, r, checks.Pass, "slow_chown = true (/etc/containerd/conf.d/99-usernsctl.toml line 3)", "chowns a copy")
	})
	t.Run("probe fails, slow_chown false", func(t *testing.T) {
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: bad(), files: map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  slow_chown = false\n"}}))
		checkstest.Expect(t, r, checks.Fail, "slow_chown = false (/etc/containerd/config.toml line 3)")
	})
	t.Run("probe did not run, new kernel", func(t *testing.T) {
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, files: map[string]string{"/proc/sys/kernel/osrelease": "6.8.0-45-generic\n"}}))
		checkstest.Expect(t, r, checks.Pass, "the probe did not run (snapshot: no probes.json)", "6.8.0-45-generic ≥ 5.19 supports")
	})
	t.Run("probe did not run, old kernel", func(t *testing.T) {
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, files: map[string]string{"/proc/sys/kernel/osrelease": "5.15.0-100-generic\n"}}))
		checkstest.Expect(t, r, checks.Fail, "5.15.0-100-generic < 5.19 does not support", "slow_chown")
	})
	t.Run("probe did not run, kernel unknown", func(t *testing.T) {
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216}))
		checkstest.Expect(t, r, checks.Warn, "kernel release is unknown")
	})
	t.Run("root_path is probed", func(t *testing.T) {
		p := &fakeProber{res: ok.res}
		run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: p, files: map[string]string{
			cfgPath: "version = 3\nroot = '/srv/containerd'\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  root_path = '/mnt/snap'\n"}}))
		if len(p.asked) != 1 || p.asked[0].Path != "/mnt/snap" {
			t.Errorf("probes asked %v", p.asked)
		}
		p = &fakeProber{res: ok.res}
		run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: p, files: map[string]string{cfgPath: "version = 3\nroot = '/srv/containerd'\n"}}))
		if len(p.asked) != 1 || p.asked[0].Path != "/srv/containerd" {
			t.Errorf("probes asked %v", p.asked)
		}
	})
	t.Run("another snapshotter", func(t *testing.T) {
		p := &fakeProber{res: ok.res}
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: p, files: map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'zfs'\n"}}))
		checkstest.Expect(t, r, checks.Skip, `"zfs" snapshotter (/etc/containerd/config.toml line 3)`)
		if len(p.asked) != 0 {
			t.Error("probed although the snapshotter is not overlayfs")
		}
	})
	t.Run("another snapshotter, version 2 key", func(t *testing.T) {
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, files: map[string]string{
			cfgPath: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n"}}))
		checkstest.Expect(t, r, checks.Skip, `"native" snapshotter (/etc/containerd/config.toml line 3)`, "confirm with `containerd config dump`")
	})
	t.Run("slow_chown not a boolean", func(t *testing.T) {
		r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: bad(), files: map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  slow_chown = 'yes'\n"}}))
		checkstest.Expect(t, r, checks.Fail, "must be true or false")
	})
}

func TestSnapshotterSkips(t *testing.T) {
	for name, spec := range map[string]hostSpec{
		"not installed":        {commands: none},
		"containerd 1.6":       {commands: v1620},
		"config does not load": {commands: v216, files: map[string]string{cfgPath: "version = \n"}},
		"1.7 with Kubernetes 1.33": {commands: v1724, target: checks.Kubernetes, kube: "1.33",
			files: map[string]string{facts.MetacopyPath: "N\n"}},
	} {
		t.Run(name, func(t *testing.T) {
			checkstest.Expect(t, run1(t, "containerd.snapshotter", newEnv(t, spec)), checks.Skip)
		})
	}
}

func TestSnapshotterMetacopy17(t *testing.T) {
	persist := "/etc/modprobe.d/usernsctl-overlay.conf"
	for _, tc := range []struct {
		name   string
		files  map[string]string
		status checks.Status
		want   []string
	}{
		{"off", map[string]string{facts.MetacopyPath: "N\n"}, checks.Warn,
			[]string{"metacopy is off", "copying whole files", "--metacopy on", "/etc/modprobe.d/"}},
		{"on and persisted", map[string]string{facts.MetacopyPath: "Y\n", persist: "options overlay metacopy=on\n"}, checks.Pass,
			[]string{"persisted (" + persist + " line 1)"}},
		{"on, not persisted", map[string]string{facts.MetacopyPath: "Y\n"}, checks.Warn,
			[]string{"nothing in /etc/modprobe.d or on the kernel command line keeps it"}},
		{"on, a later file turns it off", map[string]string{facts.MetacopyPath: "Y\n",
			"/etc/modprobe.d/10-on.conf": "options overlay metacopy=Y\n", "/usr/lib/modprobe.d/20-off.conf": "options overlay metacopy=N\n"}, checks.Warn,
			[]string{"/usr/lib/modprobe.d/20-off.conf line 1 sets metacopy=N"}},
		{"same name in /etc hides /usr/lib", map[string]string{facts.MetacopyPath: "Y\n",
			"/etc/modprobe.d/overlay.conf": "options overlay metacopy=on\n", "/usr/lib/modprobe.d/overlay.conf": "options overlay metacopy=off\n"}, checks.Pass,
			[]string{"/etc/modprobe.d/overlay.conf line 1"}},
		{"persisted on the command line", map[string]string{facts.MetacopyPath: "Y\n", "/proc/cmdline": "ro quiet overlay.metacopy=on\n"}, checks.Pass,
			[]string{"persisted (/proc/cmdline)"}},
		{"off now, on after reboot", map[string]string{facts.MetacopyPath: "N\n", persist: "options overlay metacopy=on\n"}, checks.Warn,
			[]string{"although " + persist + " line 1 sets it on", "reboot"}},
		{"module not loaded, persisted", map[string]string{persist: "options overlay metacopy=1\n"}, checks.Pass,
			[]string{"not loaded yet"}},
		{"module not loaded, nothing", nil, checks.Warn,
			[]string{"not loaded yet", "nothing persists metacopy=on"}},
		{"a binary modprobe file", map[string]string{facts.MetacopyPath: "Y\n", "/etc/modprobe.d/junk.conf": "\x7fELF\x00"}, checks.Warn,
			[]string{"keeps it after a reboot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v1724, files: tc.files}))
			checkstest.Expect(t, r, tc.status, tc.want...)
		})
	}
}
