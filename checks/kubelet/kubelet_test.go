package kubelet

import (
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/checks/facts"
)

// newEnv is a Kubernetes node whose kubelet reports version kube.
func newEnv(t testing.TB, kube string, files map[string]string) *checks.Env {
	t.Helper()
	return checkstest.Kube(t, checkstest.Env(t, checks.Kubernetes, files, `{"kubelet --version": "Kubernetes v`+kube+`.1\n"}`, nil), kube)
}

func check(t *testing.T, env *checks.Env) checks.Result {
	t.Helper()
	return checkstest.Run(t, Checkers(), "kubelet.config", env)
}

// The kubeadm layout: the packaged unit, kubeadm's drop-in passing the
// config through $KUBELET_CONFIG_ARGS, and the flag files it sources.
const (
	kubeletUnit = "/usr/lib/systemd/system/kubelet.service"
	kubeadmConf = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
	flagsEnv    = "/var/lib/kubelet/kubeadm-flags.env"
	defaultEnv  = "/etc/default/kubelet"
	header      = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"
)

func kubeadm(configPath string) map[string]string {
	return map[string]string{
		kubeletUnit: "[Unit]\nDescription=kubelet: The Kubernetes Node Agent\n\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n",
		kubeadmConf: `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=` + configPath + `"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`,
		flagsEnv: `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=pause:3.10"` + "\n",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestKubeadmNodeFollowsTheUnit(t *testing.T) {
	const custom = "/etc/kubernetes/kubelet-config.yaml"
	env := newEnv(t, "1.33", with(kubeadm(custom), custom, header+"maxPods: 200\n"))
	r := check(t, env)
	checkstest.Expect(t, r, checks.Pass, custom+" (--config in "+kubeadmConf+" line 4 (via $KUBELET_CONFIG_ARGS))", "maxPods 200 ("+custom+" line 4)", "idsPerPod 65536 (default)")
	if r.Evidence["max_pods"] != 200 || r.Evidence["path"] != custom {
		t.Errorf("evidence %v", r.Evidence)
	}
}

func TestFlagsWinOverTheFile(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	files := with(kubeadm(cfg),
		cfg, header+"maxPods: 200\nfeatureGates:\n  UserNamespacesSupport: false\n",
		defaultEnv, "KUBELET_EXTRA_ARGS=--max-pods=64 --feature-gates=UserNamespacesSupport=true,Other=false\n")
	env := newEnv(t, "1.30", files)
	k := facts.KubeletConfigOf(env)
	if k.MaxPods != 64 || !strings.HasPrefix(k.MaxPodsFrom, "--max-pods in "+defaultEnv+" line 1") {
		t.Errorf("maxPods %d from %q", k.MaxPods, k.MaxPodsFrom)
	}
	if !k.FeatureGates["UserNamespacesSupport"] || !strings.Contains(k.GateFrom["UserNamespacesSupport"], "--feature-gates") {
		t.Errorf("gates %v from %v", k.FeatureGates, k.GateFrom)
	}
	checkstest.Expect(t, check(t, env), checks.Pass, "maxPods 64 (--max-pods in "+defaultEnv)
}

func TestConfigDirDropIns(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	files := kubeadm(cfg)
	files[kubeadmConf] = strings.Replace(files[kubeadmConf], "--config="+cfg, "--config="+cfg+" --config-dir=/etc/kubernetes/kubelet.conf.d", 1)
	files[cfg] = header + "maxPods: 200\n"
	files["/etc/kubernetes/kubelet.conf.d/20-pods.conf"] = header + "maxPods: 300\n"
	files["/etc/kubernetes/kubelet.conf.d/10-userns.conf"] = header + "userNamespaces:\n  idsPerPod: 131072\n"
	files["/etc/kubernetes/kubelet.conf.d/README"] = "not read"
	env := newEnv(t, "1.35", files)
	k := facts.KubeletConfigOf(env)
	if k.MaxPods != 300 || k.IDsPerPod != 131072 || len(k.DropIns) != 2 || k.DropIns[0] != "/etc/kubernetes/kubelet.conf.d/10-userns.conf" {
		t.Errorf("%+v", k)
	}
	checkstest.Expect(t, check(t, env), checks.Pass, "maxPods 300 (/etc/kubernetes/kubelet.conf.d/20-pods.conf line 4)")
}

// C2: --config-dir is walked recursively; a missing one stops the kubelet.
func TestConfigDirNestedAndMissing(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	files := kubeadm(cfg)
	files[kubeadmConf] = strings.Replace(files[kubeadmConf], "--config="+cfg, "--config="+cfg+" --config-dir=/etc/kubernetes/kubelet.conf.d", 1)
	files[cfg] = header
	files["/etc/kubernetes/kubelet.conf.d/10-pods.conf"] = header + "maxPods: 300\n"
	files["/etc/kubernetes/kubelet.conf.d/sub/50-ids.conf"] = header + "maxPods: 64\n"
	files["/etc/kubernetes/kubelet.conf.d/zz.conf"] = header + "featureGates:\n  UserNamespacesSupport: true\n"
	env := newEnv(t, "1.33", files)
	k := facts.KubeletConfigOf(env)
	if k.MaxPods != 64 || strings.Join(k.DropIns, " ") != "/etc/kubernetes/kubelet.conf.d/10-pods.conf /etc/kubernetes/kubelet.conf.d/sub/50-ids.conf /etc/kubernetes/kubelet.conf.d/zz.conf" {
		t.Errorf("maxPods %d drop-ins %v", k.MaxPods, k.DropIns)
	}
	files = kubeadm(cfg)
	files[kubeadmConf] = strings.Replace(files[kubeadmConf], "--config="+cfg, "--config="+cfg+" --config-dir=/etc/kubernetes/gone.d", 1)
	files[cfg] = header
	checkstest.Expect(t, check(t, newEnv(t, "1.33", files)), checks.Fail,
		`failed to merge kubelet configs: failed to walk through kubelet dropin directory "/etc/kubernetes/gone.d": lstat /etc/kubernetes/gone.d: no such file or directory`,
		"mkdir -p /etc/kubernetes/gone.d")
}

// C6, C7: the CRI endpoint and the root dir the kubelet uses.
func TestEndpointAndRootDir(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	files := kubeadm(cfg)
	files[cfg] = header + "containerRuntimeEndpoint: unix:///run/k3s/containerd/containerd.sock\n"
	k := facts.KubeletConfigOf(newEnv(t, "1.33", files))
	if k.RuntimeEndpoint != "unix:///var/run/containerd/containerd.sock" || !strings.HasPrefix(k.RuntimeEndpointFrom, "--container-runtime-endpoint in "+flagsEnv) {
		t.Errorf("flag must win: %q from %q", k.RuntimeEndpoint, k.RuntimeEndpointFrom)
	}
	delete(files, flagsEnv)
	files[defaultEnv] = "KUBELET_EXTRA_ARGS=--root-dir=/data/kubelet\n"
	k = facts.KubeletConfigOf(newEnv(t, "1.33", files))
	if k.RuntimeEndpoint != "unix:///run/k3s/containerd/containerd.sock" || k.RootDir != "/data/kubelet" || !strings.HasPrefix(k.RootDirFrom, "--root-dir in "+defaultEnv) {
		t.Errorf("endpoint %q from %q, root %q from %q", k.RuntimeEndpoint, k.RuntimeEndpointFrom, k.RootDir, k.RootDirFrom)
	}
	k = facts.KubeletConfigOf(newEnv(t, "1.33", nil))
	if k.RuntimeEndpoint != "unix:///run/containerd/containerd.sock" || k.RootDir != "/var/lib/kubelet" || k.ExecPath != facts.SystemdPath {
		t.Errorf("defaults: %q %q %q", k.RuntimeEndpoint, k.RootDir, k.ExecPath)
	}
}

func TestFeatureGatesByVersion(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	gates := func(g string) string { return header + "featureGates:\n" + g }
	for _, tc := range []struct {
		kube   string
		config string
		status checks.Status
		want   []string
	}{
		{"1.26", header, checks.Fail, []string{"UserNamespacesStatelessPodsSupport is not set (off by default)", "rejects pods with hostUsers: false", "--feature-gates=UserNamespacesStatelessPodsSupport=true on the API server"}},
		{"1.27", gates("  UserNamespacesStatelessPodsSupport: true\n"), checks.Pass, nil},
		{"1.27", gates("  UserNamespacesStatelessPodsSupport: true\n  UserNamespacesSupport: true\n"), checks.Fail, []string{"UserNamespacesSupport (" + cfg + " line 6) is not a feature gate of Kubernetes 1.27.0", "unrecognized feature gate"}},
		{"1.28", gates("  UserNamespacesStatelessPodsSupport: true\n  UserNamespacesSupport: true\n"), checks.Fail, []string{"renamed UserNamespacesSupport in 1.28", "remove UserNamespacesStatelessPodsSupport from " + cfg + " line 5"}},
		{"1.29", header, checks.Fail, []string{"UserNamespacesSupport is not set (off by default): user namespaces are alpha"}},
		{"1.31", gates("  UserNamespacesSupport: false\n"), checks.Fail, []string{"UserNamespacesSupport is false (" + cfg + " line 5): user namespaces are beta and off by default"}},
		{"1.32", gates("  UserNamespacesSupport: true\n"), checks.Pass, []string{"UserNamespacesSupport is on (" + cfg + " line 5); the API server needs it too"}},
		{"1.33", header, checks.Pass, nil},
		{"1.34", gates("  UserNamespacesSupport: false\n"), checks.Fail, []string{"turns off user namespaces, which Kubernetes 1.34.0 has on by default", "remove `UserNamespacesSupport: false` from " + cfg + " line 5"}},
		{"1.31", header, checks.Fail, []string{"the API server drops hostUsers and the pod runs in the host user namespace, silently", `the feature gate "UserNamespacesSupport" is disabled: can't set spec.HostUsers`}},
		// G2: gone in 1.35.
		{"1.34", gates("  UserNamespacesPodSecurityStandards: true\n"), checks.Pass, nil},
		{"1.35", gates("  UserNamespacesPodSecurityStandards: true\n"), checks.Fail, []string{"unrecognized feature gate: UserNamespacesPodSecurityStandards", "removed in 1.35"}},
		// G3: in 1.35 ProcMountType depends on the gate.
		{"1.35", gates("  UserNamespacesSupport: false\n"), checks.Fail, []string{"the kubelet refuses to start (`ProcMountType is enabled, but depends on features that are disabled: [UserNamespacesSupport]`)"}},
		{"1.35", gates("  UserNamespacesSupport: false\n  ProcMountType: false\n"), checks.Fail, []string{"the kubelet starts, so the kubelet gives no pod a user namespace"}},
		// G7.
		{"1.34", gates("  UserNamespacesHostNetworkSupport: true\n"), checks.Fail, []string{"unrecognized feature gate: UserNamespacesHostNetworkSupport"}},
		{"1.35", gates("  UserNamespacesHostNetworkSupport: true\n"), checks.Pass, nil},
		{"1.35", gates("  UserNamespacesSupport: false\n  ProcMountType: false\n  UserNamespacesHostNetworkSupport: true\n"), checks.Fail, []string{"`UserNamespacesHostNetworkSupport is enabled, but depends on features that are disabled: [UserNamespacesSupport]`"}},
		{"1.36", gates("  NodeDeclaredFeatures: false\n  UserNamespacesHostNetworkSupport: true\n"), checks.Fail, []string{"depends on features that are disabled: [NodeDeclaredFeatures]"}},
		{"1.36", gates("  UserNamespacesSupport: false\n"), checks.Fail, []string{"cannot set feature gate UserNamespacesSupport to false, feature is locked to true"}},
		{"1.36", gates("  UserNamespacesSupport: false\n"), checks.Fail, []string{"GA and locked on", "refuses to start"}},
		{"1.36", gates("  UserNamespacesSupport: true\n"), checks.Pass, []string{"GA and always on"}},
	} {
		t.Run(tc.kube+"/"+strings.Join(strings.Fields(strings.TrimPrefix(tc.config, header)), " "), func(t *testing.T) {
			r := check(t, newEnv(t, tc.kube, map[string]string{cfg: tc.config}))
			checkstest.Expect(t, r, tc.status, tc.want...)
		})
	}
}

func TestIDsPerPod(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	ids := func(n string) string {
		return header + "userNamespaces:\n  idsPerPod: " + n + "\nfeatureGates:\n  UserNamespacesSupport: true\n"
	}
	for _, tc := range []struct {
		kube, ids string
		status    checks.Status
		want      []string
	}{
		{"1.35", "100000", checks.Fail, []string{"idsPerPod 100000 (" + cfg + " line 5) must be a multiple of 65536", "failed to validate kubelet configuration, error: invalid configuration: userNamespaces.idsPerPod must be a multiple of 65536, path: " + cfg}},
		{"1.35", "0", checks.Fail, []string{"userNamespaces.idsPerPod must not be less than 65536"}},
		{"1.35", "4294967296", checks.Fail, []string{"userNamespaces.idsPerPod must not be more than 4294967295"}},
		{"1.33", "100000", checks.Fail, []string{"must be a multiple of 65536", "the kubelet refuses to start"}},
		// C4: before 1.33 the field is unknown and dropped, whatever it holds.
		{"1.31", "1000", checks.Warn, []string{"idsPerPod 1000 (" + cfg + " line 5) is not a field of Kubernetes 1.31.0", "lenient decoding"}},
		{"1.32", "131072", checks.Warn, []string{"the kubelet ignores it"}},
		{"1.32", "65536", checks.Pass, []string{"unknown to Kubernetes 1.32.0"}},
		{"1.33", "131072", checks.Warn, []string{"ignored before Kubernetes 1.35 (planned: 1.33.0)"}},
		{"1.35", "131072", checks.Pass, []string{"idsPerPod 131072 (" + cfg + " line 5)"}},
		{"1.33", "65536", checks.Pass, nil},
	} {
		t.Run(tc.kube+"/"+tc.ids, func(t *testing.T) {
			checkstest.Expect(t, check(t, newEnv(t, tc.kube, map[string]string{cfg: ids(tc.ids)})), tc.status, tc.want...)
		})
	}
}

func TestMissingAndBrokenConfig(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	t.Run("missing, 1.33", func(t *testing.T) {
		checkstest.Expect(t, check(t, newEnv(t, "1.33", nil)), checks.Warn, "no kubelet config at "+cfg+" (default): defaults assumed (maxPods 110, idsPerPod 65536)")
	})
	t.Run("missing, 1.30: the gate is off", func(t *testing.T) {
		r := check(t, newEnv(t, "1.30", nil))
		checkstest.Expect(t, r, checks.Fail, "UserNamespacesSupport is not set", "no kubelet config at")
	})
	t.Run("unit names a missing file", func(t *testing.T) {
		r := check(t, newEnv(t, "1.33", kubeadm("/etc/kubernetes/gone.yaml")))
		checkstest.Expect(t, r, checks.Warn, "no kubelet config at /etc/kubernetes/gone.yaml (--config in "+kubeadmConf,
			"the kubelet does not start until it exists (`failed to load kubelet config file, path: /etc/kubernetes/gone.yaml`)")
	})
	for name, tc := range map[string]struct {
		files map[string]string
		want  []string
	}{
		"syntax":        {map[string]string{cfg: header + "featureGates:\n\tUserNamespacesSupport: true\n"}, []string{cfg + ":5: found character that cannot start any token", "fix " + cfg + " line 5"}},
		"binary":        {map[string]string{cfg: "\x7fELF\x02\x01\x00\x00"}, []string{cfg + ":1:1: control character U+007F"}},
		"invalid utf-8": {map[string]string{cfg: header + "maxPods: \xff\n"}, []string{cfg + ":4:10: invalid UTF-8"}},
		"directory":     {map[string]string{cfg + "/": ""}, []string{"is a directory"}},
		"10 MB":         {map[string]string{cfg: header + "# " + strings.Repeat("x", 10<<20) + "\n"}, []string{"larger than 4 MiB"}},
		"bad --max-pods": {with(kubeadm(cfg), cfg, header, defaultEnv, "KUBELET_EXTRA_ARGS=--max-pods=lots\n"),
			[]string{`--max-pods "lots" is not a number of pods`, defaultEnv + " line 1"}},
		"bad --feature-gates": {with(kubeadm(cfg), cfg, header, defaultEnv, "KUBELET_EXTRA_ARGS=--feature-gates=UserNamespacesSupport\n"),
			[]string{"want Gate=true|false"}},
	} {
		t.Run(name, func(t *testing.T) {
			checkstest.Expect(t, check(t, newEnv(t, "1.33", tc.files)), checks.Fail, tc.want...)
		})
	}
}

func TestDuplicateKeyIsANote(t *testing.T) {
	const cfg = "/var/lib/kubelet/config.yaml"
	r := check(t, newEnv(t, "1.33", map[string]string{cfg: header + "maxPods: 10\nmaxPods: 20\n"}))
	checkstest.Expect(t, r, checks.Pass, "maxPods 20 ("+cfg+" line 5)")
	if notes, _ := r.Evidence["notes"].([]string); len(notes) != 1 {
		t.Errorf("notes %v", r.Evidence["notes"])
	}
}
