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
		{"version 1 under 2.1 (field case 20), kubernetes", hostSpec{commands: v216, target: checks.Kubernetes, kube: "1.33", files: map[string]string{cfgPath: "disabled_plugins = [\"cri\"]\n[plugins.cri]\n  sandbox_image = \"pause\"\n"}}, checks.Fail,
			[]string{"no `version` line", "ignores its CRI settings (sandbox_image at /etc/containerd/config.toml line 2", "add `version = 2` at the top of /etc/containerd/config.toml",
				"disables io.containerd.grpc.v1.cri", "unknown service runtime.v1.RuntimeService", "remove it from disabled_plugins"}},
		{"version 1 under 2.1, containerd target", hostSpec{commands: v216, files: map[string]string{cfgPath: "[plugins.cri.containerd]\n  snapshotter = \"native\"\n"}}, checks.Warn,
			[]string{"no `version` line: containerd 2.1.4 reads it as version 1", "containerd.snapshotter at /etc/containerd/config.toml line 1", "`containerd config migrate` of containerd before 2.3 drops"}},
		{"version 1 under 2.3", hostSpec{commands: v23, files: map[string]string{cfgPath: "[plugins.cri.containerd]\n  snapshotter = \"native\"\n"}}, checks.Pass,
			[]string{"version 1 (migrated to version 4 on every start"}},
		{"version 1 drop-in under 2.1", hostSpec{commands: v216, files: map[string]string{cfgPath: v3main, "/etc/containerd/conf.d/10.toml": "[plugins.cri]\n  sandbox_image = \"pause\"\n"}}, checks.Warn,
			[]string{"/etc/containerd/conf.d/10.toml has no `version` line", "add `version = 2` at the top of /etc/containerd/conf.d/10.toml"}},
		{"version 1 under 1.6", hostSpec{commands: v1620, files: map[string]string{cfgPath: "[plugins.cri]\n  sandbox_image = \"pause\"\n"}}, checks.Warn,
			[]string{"version 1 config", "containerd from 2.0 and before 2.3 ignores its CRI settings"}},
		{"short disabled plugin in a version 2 file", hostSpec{commands: v216, files: map[string]string{cfgPath: "version = 2\ndisabled_plugins = [\"cri\"]\n"}}, checks.Fail,
			[]string{"line 2: disabled_plugins names \"cri\"", `invalid disabled plugin URI "cri" expect io.containerd.x.vx`, "io.containerd.grpc.v1.cri"}},
		{"short plugin key under 1.7", hostSpec{commands: v1724, files: map[string]string{cfgPath: "version = 2\n[plugins.cri]\n  sandbox_image = \"pause\"\n"}}, checks.Fail,
			[]string{`invalid plugin key URI "cri" expect io.containerd.x.vx`}},
		{"short plugin key under 2.1", hostSpec{commands: v216, files: map[string]string{cfgPath: "version = 3\n[plugins.cri]\n  sandbox_image = \"pause\"\n"}}, checks.Warn,
			[]string{"knows no such plugin and ignores the table"}},
		{"CRI disabled, containerd target", hostSpec{commands: v216, files: map[string]string{cfgPath: "version = 3\ndisabled_plugins = ['io.containerd.cri.v1.runtime']\n"}}, checks.Pass,
			[]string{"only CRI clients need it"}},
		{"default handler missing", hostSpec{commands: v216, target: checks.Kubernetes, kube: "1.33", files: map[string]string{cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'crun'\n"}}, checks.Fail,
			[]string{"line 3: no corresponding runtime configured in `containerd.runtimes` for `containerd` `default_runtime_name = \"crun\"`", "the kubelet has no runtime"}},
		{"version 3 under 1.7", hostSpec{commands: v1724, files: map[string]string{cfgPath: "version = 3\n"}}, checks.Fail,
			[]string{"reads at most version 2", "failed to load TOML from /etc/containerd/config.toml: unsupported config version `3`"}},
		{"version 3 drop-in under 1.7", hostSpec{commands: v1724, files: map[string]string{cfgPath: "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n",
			"/etc/containerd/conf.d/10.toml": "version = 3\n"}}, checks.Fail,
			[]string{"/etc/containerd/conf.d/10.toml has version 3", "unsupported config version `3`"}},
		{"version 4 under 2.1", hostSpec{commands: v216, files: map[string]string{cfgPath: "version = 4\n"}}, checks.Fail,
			[]string{"reads at most version 3", "expected containerd config version equal to or less than `3`, got `4`"}},
		{"version 4 under 2.3", hostSpec{commands: v23, files: map[string]string{cfgPath: "version = 4\n"}}, checks.Pass,
			[]string{"version 4"}},
		{"drop-in newer than main, nothing lost", hostSpec{commands: v216, files: map[string]string{
			cfgPath:                              "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n",
			"/etc/containerd/conf.d/10-new.toml": "version = 3\n"}}, checks.Pass,
			[]string{"version 2"}},
		{"drop-in newer than main drops the main's CRI settings (2.1)", hostSpec{commands: v216, files: map[string]string{
			cfgPath:                              "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.10\"\n",
			"/etc/containerd/conf.d/10-new.toml": "version = 3\n"}}, checks.Warn,
			[]string{"/etc/containerd/config.toml (version 2) sets sandbox_image", "/etc/containerd/conf.d/10-new.toml is version 3 and loaded after it", "rewrite /etc/containerd/config.toml as version 3"}},
		{"drop-in newer than main keeps them (2.3)", hostSpec{commands: v23, files: map[string]string{
			cfgPath:                              "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.10\"\n",
			"/etc/containerd/conf.d/10-new.toml": "version = 3\n"}}, checks.Pass,
			[]string{"version 2"}},
		{"version 3 file with version 2 keys", hostSpec{commands: v216, files: map[string]string{
			cfgPath: "version = 3\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"runc\"\n"}}, checks.Warn,
			[]string{"is version 3 but sets containerd.default_runtime_name", "move them"}},
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

// keyed answers probes by key, so that the snapshot root and containerd's
// TMPDIR can differ; an unknown key did not run.
type keyed map[string]probe.Result

func (k keyed) Probe(_ context.Context, s probe.Spec) probe.Result {
	if r, ok := k[s.Key()]; ok {
		return r
	}
	return probe.Result{Reason: probe.NotRecorded}
}

func TestSnapshotter2x(t *testing.T) {
	ok := probe.Result{Ran: true, OK: true}
	bad := probe.Result{Ran: true, OK: false, Step: "mount_setattr", Errno: "EINVAL", Error: "mount_setattr: invalid argument"}
	kernel := func(rel string, files map[string]string) map[string]string {
		out := map[string]string{"/proc/sys/kernel/osrelease": rel + "\n"}
		for k, v := range files {
			out[k] = v
		}
		return out
	}
	slowDropIn := map[string]string{
		cfgPath: v3main,
		"/etc/containerd/conf.d/99-usernsctl.toml": "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  slow_chown = true\n",
	}
	root, tmp := "overlay-idmap:/var/lib/containerd", "overlay-idmap:/tmp"
	for _, tc := range []struct {
		name   string
		spec   hostSpec
		status checks.Status
		want   []string
	}{
		{"remap-ids claimed, root works", hostSpec{commands: v216, prober: keyed{root: ok}, files: kernel("6.8.0-45-generic", nil)}, checks.Pass,
			[]string{"6.8.0-45-generic ≥ 5.19, so containerd claims remap-ids without probing", "works on the filesystem of /var/lib/containerd (containerd's default root) (probed)", "without copying"}},
		{"remap-ids claimed, root not probed", hostSpec{commands: v216, files: kernel("6.8.0-45-generic", nil)}, checks.Pass,
			[]string{"was not probed (snapshot: no probes.json)"}},
		{"remap-ids claimed, root fails (NFS)", hostSpec{commands: v216, prober: keyed{root: bad}, files: kernel("6.1.0-28-amd64", nil)}, checks.Fail,
			[]string{"claims remap-ids without probing", "fails on the filesystem of /var/lib/containerd", "failed to prepare idmapped overlay", "slow_chown does not help", "set root_path under"}},
		{"remap-ids claimed, root fails, slow_chown set", hostSpec{commands: v216, prober: keyed{root: bad}, files: kernel("6.1.0-28-amd64", slowDropIn)}, checks.Fail,
			[]string{"slow_chown = true, /etc/containerd/conf.d/99-usernsctl.toml line 3, is never used"}},
		{"remap-ids claimed, slow_chown unused", hostSpec{commands: v216, prober: keyed{root: ok}, files: kernel("6.1.0-28-amd64", slowDropIn)}, checks.Pass,
			[]string{"slow_chown = true (/etc/containerd/conf.d/99-usernsctl.toml line 3) is never used: remap-ids wins"}},
		{"old kernel, no slow_chown (field case 19)", hostSpec{commands: v216, prober: keyed{root: bad}, files: kernel("5.15.0-100-generic", map[string]string{cfgPath: v3main})}, checks.Fail,
			[]string{"5.15.0-100-generic < 5.19", "in its TMPDIR /tmp", "claims no remap-ids", "slow_chown is not set",
				"doesn't support idmap mounts on this host, configure `slow_chown` to allow a slower and expensive fallback",
				"usernsctl apply --target containerd --slow-chown on", "chowned per pod"}},
		{"old kernel, slow_chown false", hostSpec{commands: v216, files: kernel("5.15.0-100-generic", map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  slow_chown = false\n"})}, checks.Fail,
			[]string{"slow_chown = false (/etc/containerd/config.toml line 3)"}},
		{"old kernel, slow_chown: a cost", hostSpec{commands: v216, files: kernel("5.15.0-100-generic", slowDropIn)}, checks.Warn,
			[]string{"slow_chown = true (/etc/containerd/conf.d/99-usernsctl.toml line 3): containerd 2.1.4 chowns a copy of every image snapshot", "to avoid the copies"}},
		{"old kernel with a backport, TMPDIR probe works", hostSpec{commands: v216, prober: keyed{root: ok, tmp: ok}, files: kernel("5.14.0-427.13.1.el9_4.x86_64", nil)}, checks.Pass,
			[]string{"probes an overlay over an idmapped layer in its TMPDIR /tmp: it works here (probed)"}},
		{"TMPDIR probe fails, root works", hostSpec{commands: v216, prober: keyed{root: ok, tmp: bad}, files: kernel("5.14.0-427.13.1.el9_4.x86_64", map[string]string{
			"/etc/systemd/system/containerd.service": "[Service]\nEnvironment=TMPDIR=/tmp\nExecStart=/usr/bin/containerd\n"})}, checks.Fail,
			[]string{"it fails here (probed)", "set Environment=TMPDIR="}},
		{"kernel unknown", hostSpec{commands: v216}, checks.Warn, []string{"kernel release is unknown"}},
		{"slow_chown not a boolean", hostSpec{commands: v216, files: map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  slow_chown = 'yes'\n"}}, checks.Fail,
			[]string{"must be true or false"}},
		{"native: a copy per pod", hostSpec{commands: v216, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'native'\n"})}, checks.Warn,
			[]string{`the "native" snapshotter (/etc/containerd/config.toml line 3) declares no remap capability`}},
		{"per-handler snapshotter wins", hostSpec{commands: v216, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  snapshotter = 'zfs'\n"})}, checks.Warn,
			[]string{`the "zfs" snapshotter (the "runc" handler's snapshotter, /etc/containerd/config.toml line 3)`}},
		{"another handler's snapshotter: a warning naming it", hostSpec{commands: v216, prober: keyed{root: ok}, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.gvisor]\n  runtime_type = 'io.containerd.runsc.v1'\n  snapshotter = 'native'\n"})}, checks.Warn,
			[]string{`runtime handler "gvisor" (not the default) uses the "native" snapshotter`, "maps image layers per pod without copying"}},
		{"version 2 snapshotter without runtimes (R9)", hostSpec{commands: v216, prober: keyed{root: ok}, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n"})}, checks.Warn,
			[]string{`/etc/containerd/config.toml line 3 sets snapshotter = "native"`, "without a runtimes table", `the CRI uses "overlayfs"`, "io.containerd.cri.v1.images"}},
		{"version 2 snapshotter with runtimes", hostSpec{commands: v216, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"})}, checks.Warn,
			[]string{`the "native" snapshotter (/etc/containerd/config.toml line 3)`}},
		{"proxy with only-remap-ids", hostSpec{commands: v216, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 3\n[proxy_plugins.stargz]\n  type = 'snapshot'\n  address = '/run/x.sock'\n  capabilities = ['only-remap-ids']\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'stargz'\n"})}, checks.Fail,
			[]string{`proxy snapshotter "stargz" declares capabilities = [only-remap-ids]`, "refuses every user-namespaced pod"}},
		{"proxy with remap-ids", hostSpec{commands: v216, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 3\n[proxy_plugins.stargz]\n  type = 'snapshot'\n  address = '/run/x.sock'\n  capabilities = ['remap-ids', 'only-remap-ids']\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'stargz'\n"})}, checks.Pass,
			[]string{"trusts the declaration"}},
		{"proxy without capabilities", hostSpec{commands: v216, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 3\n[proxy_plugins.stargz]\n  type = 'snapshot'\n  address = '/run/x.sock'\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'stargz'\n"})}, checks.Warn,
			[]string{"declares no remap capability"}},
		{"erofs on 2.3 with an old kernel", hostSpec{commands: v23, files: kernel("5.15.0-100-generic", map[string]string{
			cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'erofs'\n"})}, checks.Fail,
			[]string{"erofs", "always declares only-remap-ids", "erofs has no slow_chown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkstest.Expect(t, run1(t, "containerd.snapshotter", newEnv(t, tc.spec)), tc.status, tc.want...)
		})
	}
	t.Run("containerd's root on NFS, snapshots elsewhere (R16)", func(t *testing.T) {
		env := newEnv(t, hostSpec{commands: v216, target: checks.Kubernetes, kube: "1.33",
			prober: keyed{"overlay-idmap:/mnt/snap": ok, "idmap:/srv/nfs/containerd": bad},
			files:  kernel("6.8.0-45-generic", map[string]string{cfgPath: "version = 3\nroot = '/srv/nfs/containerd'\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  root_path = '/mnt/snap'\n"})})
		checkstest.Expect(t, run1(t, "containerd.snapshotter", env), checks.Fail,
			"idmapped mounts fail on the filesystem of containerd's root /srv/nfs/containerd (set in /etc/containerd/config.toml line 2", "/etc/hostname and /etc/resolv.conf", "failed to set MOUNT_ATTR_IDMAP")
	})
	t.Run("root_path is probed", func(t *testing.T) {
		p := &fakeProber{res: ok}
		run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: p, files: kernel("6.8.0-45-generic", map[string]string{
			cfgPath: "version = 3\nroot = '/srv/containerd'\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  root_path = '/mnt/snap'\n"})}))
		if len(p.asked) != 1 || p.asked[0].Path != "/mnt/snap" {
			t.Errorf("probes asked %v", p.asked)
		}
		p = &fakeProber{res: ok}
		run1(t, "containerd.snapshotter", newEnv(t, hostSpec{commands: v216, prober: p, files: kernel("6.8.0-45-generic", map[string]string{cfgPath: "version = 3\nroot = '/srv/containerd'\n"})}))
		if len(p.asked) != 1 || p.asked[0].Path != "/srv/containerd" {
			t.Errorf("probes asked %v", p.asked)
		}
	})
}

func TestSnapshotterSkips(t *testing.T) {
	for name, spec := range map[string]hostSpec{
		"not installed":        {commands: none},
		"containerd 1.6":       {commands: v1620},
		"config does not load": {commands: v216, files: map[string]string{cfgPath: "version = \n"}},
		"1.7 with Kubernetes 1.33": {commands: v1724, target: checks.Kubernetes, kube: "1.33",
			files: map[string]string{facts.MetacopyPath: "N\n"}},
		"Kubernetes 1.24": {commands: v216, target: checks.Kubernetes, kube: "1.24"},
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
