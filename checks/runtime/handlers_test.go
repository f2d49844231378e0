package runtime

import (
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/internal/run"
)

const cfgPath = "/etc/containerd/config.toml"

// Real `--version` outputs.
const (
	ctrd214   = "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376\n"
	ctrd227   = "containerd github.com/containerd/containerd/v2 v2.2.7 abcdef\n"
	ctrd1724  = "containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1\n"
	ctrd170   = "containerd containerd.io 1.7.0 1fbd70374134b891f97ce19c70b6e50c7b9f4e0d\n"
	ctrd1620  = "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n"
	runc126V  = "runc version 1.2.6\ncommit: v1.2.6-0-ge89a2992\nspec: 1.2.0\ngo: go1.22.12\nlibseccomp: 2.5.5\n"
	runc115V  = "runc version 1.1.15\ncommit: v1.1.15-0-gbc20cb44\nspec: 1.0.2-dev\ngo: go1.22.3\nlibseccomp: 2.5.5\n"
	runc120V  = "runc version 1.2.0\ncommit: v1.2.0-0-g0b9fa21b\nspec: 1.2.0\n"
	crun181V  = "crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\nrundir: /run/crun\nspec: 1.0.0\n"
	crun19V   = "crun version 1.9\ncommit: a538ac4ea1ff319bcfe2bf81cb5c6f687e2dc9d3\nrundir: /run/crun\nspec: 1.0.0\n"
	v3Handler = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s]\n  runtime_type = '%s'\n"
)

type host struct {
	target checks.Target
	kube   string
	files  map[string]string
	cmds   map[string]any
}

func (h host) env(t *testing.T) *checks.Env {
	t.Helper()
	if h.target == "" {
		h.target = checks.Kubernetes
	}
	return checkstest.Kube(t, checkstest.Env(t, h.target, h.files, commands(t, h.cmds), nil), h.kube)
}

func with(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestFeaturesPerHandler(t *testing.T) {
	runc126 := map[string]any{"runc --version": runc126V, "runc features": fixture(t, "runc-1.2.6.json")}
	runc115 := map[string]any{"runc --version": runc115V, "runc features": fixture(t, "runc-1.1.5.json")}
	optRunc := map[string]any{"/opt/runc-1.1/runc --version": runc115V, "/opt/runc-1.1/runc features": fixture(t, "runc-1.1.5.json")}
	crun181 := map[string]any{"/usr/bin/crun --version": crun181V, "/usr/bin/crun features": run.Entry{Stderr: fixture(t, "crun-1.8.1.stderr"), Exit: 1},
		"crun --version": crun181V, "crun features": run.Entry{Stderr: fixture(t, "crun-1.8.1.stderr"), Exit: 1}}
	c214 := map[string]any{"containerd --version": ctrd214}
	binaryName := map[string]string{cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  BinaryName = '/opt/runc-1.1/runc'\n"}
	crunDefault := map[string]string{cfgPath: `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'crun'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun]
  runtime_type = 'io.containerd.runc.v2'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]
    BinaryName = '/usr/bin/crun'
`}
	kata := map[string]string{cfgPath: strings.ReplaceAll(strings.ReplaceAll(v3Handler, "%s", "kata"), "'kata'", "'io.containerd.kata.v2'")}
	kata = map[string]string{cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]\n  runtime_type = 'io.containerd.kata.v2'\n"}
	kataDefault := map[string]string{cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'kata'\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]\n  runtime_type = 'io.containerd.kata.v2'\n"}
	for _, tc := range []struct {
		name   string
		h      host
		status checks.Status
		want   []string
	}{
		{"runc 1.2.6", host{kube: "1.33", cmds: with(c214, runc126)}, checks.Pass,
			[]string{`handler "runc" (no BinaryName: runc on containerd's PATH): runc 1.2.6 declares "user"`, "idmap.enabled = true"}},
		{"runc 1.1 default, kubelet 1.33 refuses", host{kube: "1.33", cmds: with(c214, runc115)}, checks.Fail,
			[]string{"runc 1.1.15 lists no linux.mountExtensions.idmap (runc declares it from 1.2.0)", "the kubelet (Kubernetes 1.33.0) refuses every hostUsers: false pod",
				"can't set `spec.hostUsers: false`, runtime does not support user namespaces", "replace runc with runc 1.2.1 or later"}},
		{"runc 1.1 default, kubelet 1.29: task create", host{kube: "1.29", cmds: with(c214, runc115)}, checks.Fail,
			[]string{"containerd refuses the containers of every hostUsers: false pod at task create", "failed to validate OCI runtime features: idmap mounts not supported: missing `mountExtensions.idmap` entry in `features` command"}},
		{"BinaryName runc 1.1, PATH runc 1.2.6", host{kube: "1.34", files: binaryName, cmds: with(c214, runc126, optRunc)}, checks.Fail,
			[]string{`handler "runc" (BinaryName /etc/containerd/config.toml line 3): /opt/runc-1.1/runc (runc 1.1.15) lists no linux.mountExtensions.idmap`, "refuses every hostUsers: false pod",
				"replace /opt/runc-1.1/runc (BinaryName of handler \"runc\", /etc/containerd/config.toml line 3)"}},
		{"crun installed, unused", host{kube: "1.33", cmds: with(c214, runc126, crun181)}, checks.Pass,
			[]string{`handler "runc"`}},
		{"crun 1.8.1 default, kubelet 1.29", host{kube: "1.29", files: crunDefault, cmds: with(c214, runc126, crun181)}, checks.Fail,
			[]string{"/usr/bin/crun (crun 1.8.1) has no `features` subcommand (`/usr/bin/crun features` exited 1)", "(crun has it from 1.8.6)",
				"unmarshal runtime features: type with url : not found", "replace /usr/bin/crun", "crun 1.9 or later"}},
		{"kata beside runc, containerd 2.1", host{kube: "1.33", files: kata, cmds: with(c214, runc126)}, checks.Warn,
			[]string{`handler "kata" runs the shim io.containerd.kata.v2`, "reads features only from io.containerd.runc.v2 shims",
				`can't set ` + "`spec.hostUsers: false`" + `, RuntimeClass handler "kata" does not support user namespaces`, "hostUsers: false pods of a RuntimeClass with handler \"kata\""}},
		{"kata default", host{kube: "1.33", files: kataDefault, cmds: with(c214, runc126)}, checks.Fail,
			[]string{`handler "kata" runs the shim io.containerd.kata.v2`, "refuses every hostUsers: false pod"}},
		{"kata beside runc, containerd 2.2.7 asks every shim", host{kube: "1.33", files: kata, cmds: with(map[string]any{"containerd --version": ctrd227}, runc126)}, checks.Warn,
			[]string{"containerd 2.2.7 asks it for its features", "crictl info"}},
		{"containerd 1.7 does not ask", host{kube: "1.33", cmds: with(map[string]any{"containerd --version": ctrd1724}, runc115)}, checks.Skip,
			[]string{"containerd 1.7.24~ds1 does not consult the OCI runtime's features"}},
		{"containerd target", host{target: checks.Containerd, cmds: with(c214, runc115)}, checks.Pass,
			[]string{"only CRI pods need it"}},
		{"garbage", host{kube: "1.33", cmds: with(c214, map[string]any{"runc --version": runc126V, "runc features": "{\"linux\": [1,"})}, checks.Warn,
			[]string{"`runc features` output:1:", "cannot be told here"}},
		{"runc not installed", host{kube: "1.33", cmds: c214}, checks.Fail,
			[]string{"runc is not installed", "no container of the handler can start"}},
		{"Kubernetes 1.24", host{kube: "1.24", cmds: with(c214, runc126)}, checks.Skip, nil},
		{"CRI-O", host{kube: "1.33", cmds: map[string]any{"crio --version": "crio version 1.30.0\n"}}, checks.Skip, []string{"CRI-O"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkstest.Expect(t, checkstest.Run(t, Checkers(), "runtime.features", tc.h.env(t)), tc.status, tc.want...)
		})
	}
}

func TestRuncCrunUse(t *testing.T) {
	c214 := map[string]any{"containerd --version": ctrd214}
	c202 := map[string]any{"containerd --version": "containerd github.com/containerd/containerd/v2 v2.0.2 c507a0257ea6462fbd6f5ba4f5c74facb04021f4\n"}
	crunDefault := map[string]string{cfgPath: `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'crun'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun]
  runtime_type = 'io.containerd.runc.v2'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]
    BinaryName = '/usr/bin/crun'
`}
	crunExtra := map[string]string{cfgPath: `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun]
  runtime_type = 'io.containerd.runc.v2'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]
    BinaryName = '/usr/bin/crun'
`}
	for _, tc := range []struct {
		name   string
		id     string
		h      host
		status checks.Status
		want   []string
	}{
		{"runc 1.1 default, containerd 2.0", "runtime.runc", host{kube: "1.30", cmds: with(c202, map[string]any{"runc --version": runc115V})}, checks.Fail,
			[]string{"runc 1.1.15 is older than 1.2.0 (run by handler \"runc\")", "containerd 2.0.2 requires", "upgrade runc to runc 1.2.1 or later"}},
		{"runc 1.1 with containerd 1.7, Kubernetes 1.26", "runtime.runc", host{kube: "1.26", cmds: with(map[string]any{"containerd --version": ctrd1724, "runc --version": runc115V})}, checks.Pass,
			[]string{"creates user namespaces, all containerd 1.7.24~ds1 needs from it"}},
		{"runc 1.2.0", "runtime.runc", host{kube: "1.33", cmds: with(c214, map[string]any{"runc --version": runc120V})}, checks.Fail,
			[]string{"runc 1.2.0 has user-namespace regressions fixed in 1.2.1 (run by handler \"runc\")"}},
		{"runc only for containerd's own runc handler", "runtime.runc", host{kube: "1.33", files: crunDefault, cmds: with(c214, map[string]any{"runc --version": runc115V, "/usr/bin/crun --version": crun19V})}, checks.Warn,
			[]string{"runc 1.1.15 is older than 1.2.0 (run by handler \"runc\")"}},
		{"runc unused", "runtime.runc", host{kube: "1.33", files: map[string]string{cfgPath: crunDefault[cfgPath] + "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  BinaryName = '/usr/bin/crun'\n"},
			cmds: with(c214, map[string]any{"runc --version": runc115V, "/usr/bin/crun --version": crun19V})}, checks.Skip,
			[]string{"no CRI runtime handler runs runc", `"crun" runs /usr/bin/crun`, `"runc" runs /usr/bin/crun`}},
		{"docker, runc 1.0", "runtime.runc", host{target: checks.Docker, cmds: map[string]any{"runc --version": "runc version 1.0.0-rc93\n"}}, checks.Pass,
			[]string{"all dockerd's userns-remap needs from it"}},
		{"docker, runc 1.2.0", "runtime.runc", host{target: checks.Docker, cmds: map[string]any{"runc --version": runc120V}}, checks.Fail,
			[]string{"regressions fixed in 1.2.1"}},
		{"containerd target, runc 1.1", "runtime.runc", host{target: checks.Containerd, cmds: with(c214, map[string]any{"runc --version": runc115V})}, checks.Pass,
			[]string{"creates user namespaces, all `ctr run --uidmap` needs from it"}},
		{"crun installed, unused", "runtime.crun", host{kube: "1.33", cmds: with(c214, map[string]any{"runc --version": runc126V, "crun --version": crun181V})}, checks.Skip,
			[]string{"no CRI runtime handler runs crun", `"runc" runs runc`}},
		{"crun 1.8.1 default", "runtime.crun", host{kube: "1.33", files: crunDefault, cmds: with(c214, map[string]any{"/usr/bin/crun --version": crun181V})}, checks.Fail,
			[]string{"/usr/bin/crun (crun 1.8.1) is older than 1.9 (run by handler \"crun\")", "upgrade /usr/bin/crun to crun 1.9 or later"}},
		{"crun 1.8.1 for another handler", "runtime.crun", host{kube: "1.33", files: crunExtra, cmds: with(c214, map[string]any{"runc --version": runc126V, "/usr/bin/crun --version": crun181V})}, checks.Warn,
			[]string{"/usr/bin/crun (crun 1.8.1) is older than 1.9 (run by handler \"crun\")"}},
		{"crun 1.9 default", "runtime.crun", host{kube: "1.33", files: crunDefault, cmds: with(c214, map[string]any{"/usr/bin/crun --version": crun19V})}, checks.Pass,
			[]string{"supports user namespaces and idmapped mounts"}},
		{"crun, docker", "runtime.crun", host{target: checks.Docker, cmds: map[string]any{"crun --version": crun181V}}, checks.Pass, nil},
		{"crun, containerd target", "runtime.crun", host{target: checks.Containerd, cmds: with(c214, map[string]any{"crun --version": crun181V})}, checks.Skip,
			[]string{"`ctr run` runs runc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkstest.Run(t, Checkers(), tc.id, tc.h.env(t))
			checkstest.Expect(t, r, tc.status, tc.want...)
		})
	}
}

func TestContainerdVersions(t *testing.T) {
	for _, tc := range []struct {
		name, version string
		target        checks.Target
		kube          string
		status        checks.Status
		want          []string
	}{
		{"1.6, kubelet 1.30 refuses", ctrd1620, checks.Kubernetes, "1.30", checks.Fail,
			[]string{"the kubelet (Kubernetes 1.30.0) refuses every hostUsers: false pod", "reports no runtime handlers"}},
		{"1.6, kubelet 1.29: silent", ctrd1620, checks.Kubernetes, "1.29", checks.Fail,
			[]string{"containerd 1.6.20~ds1 silently ignores hostUsers: false", "as host root"}},
		{"1.6, containerd target", ctrd1620, checks.Containerd, "", checks.Warn, []string{"`ctr run --uidmap` works with a chowned copy"}},
		{"1.7, kubelet 1.34 refuses", ctrd1724, checks.Kubernetes, "1.34", checks.Fail,
			[]string{"the kubelet (Kubernetes 1.34.0) refuses every hostUsers: false pod", "containerd 1.7.24~ds1 reports no runtime handlers"}},
		{"1.7.24, kubelet 1.29", ctrd1724, checks.Kubernetes, "1.29", checks.Fail,
			[]string{"idmap mounts not yet supported, but they were requested for: …"}},
		{"1.7.0, kubelet 1.29: silent", ctrd170, checks.Kubernetes, "1.29", checks.Warn,
			[]string{"containerd 1.7.0 silently drops the id mappings", "owned by nobody"}},
		{"1.7, kubelet 1.26: a copy", ctrd1724, checks.Kubernetes, "1.26", checks.Warn, []string{"chowning a copy"}},
		{"2.1", ctrd214, checks.Kubernetes, "1.34", checks.Pass, []string{"idmapped mounts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := host{target: tc.target, kube: tc.kube, cmds: map[string]any{"containerd --version": tc.version}}.env(t)
			checkstest.Expect(t, checkstest.Run(t, Checkers(), "runtime.containerd", env), tc.status, tc.want...)
		})
	}
}

func TestOOMScoreAdj(t *testing.T) {
	proc := func(pid, capEff, adj string, extra map[string]string) map[string]string {
		m := map[string]string{
			"/proc/" + pid + "/stat":          pid + " (containerd) S 1 " + pid + " " + pid + " 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 12 0 1234 0 0\n",
			"/proc/" + pid + "/cmdline":       "/usr/bin/containerd\x00",
			"/proc/" + pid + "/status":        "Name:\tcontainerd\nCapInh:\t0000000000000000\nCapPrm:\t" + capEff + "\nCapEff:\t" + capEff + "\nCapBnd:\t" + capEff + "\n",
			"/proc/" + pid + "/oom_score_adj": adj + "\n",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	const noSysResource, full = "000001fffeffffff", "000001ffffffffff"
	c214 := map[string]any{"containerd --version": ctrd214}
	for _, tc := range []struct {
		name   string
		h      host
		status checks.Status
		want   []string
	}{
		{"no CAP_SYS_RESOURCE", host{kube: "1.34", files: proc("812", noSysResource, "0", nil), cmds: c214}, checks.Fail,
			[]string{"containerd (pid 812; CapEff 000001fffeffffff in /proc/812/status, oom_score_adj 0) lacks CAP_SYS_RESOURCE", "can't get final child's PID from pipe: EOF",
				"failed to update /proc/self/oom_score_adj: Permission denied", "restrict_oom_score_adj = true", `[plugins."io.containerd.cri.v1.runtime"]`}},
		{"restricted", host{kube: "1.34", files: proc("812", noSysResource, "0", map[string]string{cfgPath: "version = 3\n[plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = true\n"}), cmds: c214}, checks.Warn,
			[]string{"restrict_oom_score_adj = true (/etc/containerd/config.toml line 3)", "lose the OOM protection"}},
		{"restricted the version 2 way", host{kube: "1.34", files: proc("812", noSysResource, "0", map[string]string{cfgPath: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n"}), cmds: c214}, checks.Warn,
			[]string{"restrict_oom_score_adj = true (/etc/containerd/config.toml line 3)"}},
		{"has it", host{kube: "1.34", files: proc("812", full, "-999", nil), cmds: c214}, checks.Pass, []string{"has CAP_SYS_RESOURCE"}},
		{"low score suffices", host{kube: "1.34", files: proc("812", noSysResource, "-999", nil), cmds: c214}, checks.Pass, []string{"its oom_score_adj is -999, at or below the kubelet's -998"}},
		{"not running: own bounding set", host{kube: "1.34", files: map[string]string{"/proc/self/status": "CapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n"}, cmds: c214}, checks.Fail,
			[]string{"usernsctl's own process", "CapBnd 000001fffeffffff"}},
		{"a config dump is not the daemon", host{kube: "1.34", files: map[string]string{
			"/proc/77/stat": "77 (containerd) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n", "/proc/77/cmdline": "containerd\x00config\x00dump\x00",
			"/proc/77/status": "CapEff:\t000001fffeffffff\n", "/proc/self/status": "CapBnd:\t000001ffffffffff\n"}, cmds: c214}, checks.Pass,
			[]string{"usernsctl's own process"}},
		{"nothing recorded", host{kube: "1.34", cmds: c214}, checks.Skip, []string{"/proc/self/status cannot be read"}},
		{"containerd target", host{target: checks.Containerd, files: proc("812", noSysResource, "0", nil), cmds: c214}, checks.Pass, []string{"CRI pods would fail"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkstest.Expect(t, checkstest.Run(t, Checkers(), "runtime.oom_score_adj", tc.h.env(t)), tc.status, tc.want...)
		})
	}
}

func TestProcessStart(t *testing.T) {
	env := host{files: map[string]string{"/proc/stat": "cpu 1 2 3\nbtime 1700000000\n",
		"/proc/9/stat": "9 (containerd) S 1 9 9 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 12 0 12345 0 0\n"}}.env(t)
	start, ok := processStart(env, 9)
	if !ok || start.Unix() != 1700000123 {
		t.Errorf("start %v %v, want btime + 123.45 s", start, ok)
	}
}
