package facts

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/sys/user"

	"github.com/usernsctl/usernsctl/checks"
	kubeletconfig "github.com/usernsctl/usernsctl/config/kubelet"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/config/systemd"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/ids"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/rules"
)

// Kubelet defaults (KubeletConfiguration).
const (
	DefaultMaxPods   = kubeletconfig.DefaultMaxPods
	DefaultIDsPerPod = kubeletconfig.DefaultIDsPerPod
)

// KubeletConfig is the kubelet's configuration as far as user namespaces care.
type KubeletConfig struct {
	Path   string // /var/lib/kubelet/config.yaml unless the unit says otherwise
	Exists bool
	// MaxPods and IDsPerPod carry the defaults when unset.
	MaxPods      int
	IDsPerPod    int64
	FeatureGates map[string]bool
	// Err is why the config in effect cannot be read or does not parse
	// (with line): the kubelet will not start with it. ErrFix, when set,
	// is the exact fix.
	Err    error
	ErrFix string

	// Source says how Path was found ("default", "--config in
	// /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf line 6
	// (via $KUBELET_CONFIG_ARGS)").
	Source string
	// MaxPodsFrom, IDsPerPodFrom and GateFrom say where each value came
	// from: "default", "FILE line N", or a --flag in the unit (flags win
	// over the file).
	MaxPodsFrom   string
	IDsPerPodFrom string
	GateFrom      map[string]string
	// IDsPerPodSet is true when anything sets idsPerPod explicitly.
	IDsPerPodSet bool
	// DropIns are the --config-dir files merged over the config file, in
	// the order the kubelet merges them (a recursive walk, lexical within
	// each directory).
	DropIns []string
	// ConfigDir is --config-dir, "" when the unit passes none.
	ConfigDir string
	// ConfigFlag is true when the unit passes --config: the kubelet then
	// refuses to start while the file is missing (kubeadm's unit does so
	// before `kubeadm init`/`join` writes it).
	ConfigFlag bool

	// RootDir is --root-dir (KubeletFlags.RootDirectory, a flag only):
	// the pods' records are in RootDir/pods. RootDirFrom says where.
	RootDir, RootDirFrom string
	// RuntimeEndpoint is the CRI socket the kubelet talks to:
	// --container-runtime-endpoint beats containerRuntimeEndpoint in the
	// config, else unix:///run/containerd/containerd.sock. The runtime
	// checks should judge the runtime behind it.
	RuntimeEndpoint, RuntimeEndpointFrom string

	// Binary is the executable the unit starts (ExecStart's argv[0]); ""
	// without a unit.
	Binary string
	// ExecPath is the PATH the kubelet runs with (where it looks for
	// getsubids): the unit's Environment=PATH, else systemd's default.
	// ExecPathFrom says which.
	ExecPath, ExecPathFrom string
	// Notes are things the kubelet accepts with a warning, and problems
	// reading its unit.
	Notes []string
}

// KubeletUnit is the systemd unit the kubelet runs as.
const KubeletUnit = "kubelet.service"

// Kubelet defaults for what only the unit's flags set.
const (
	DefaultKubeletRootDir  = kubeletconfig.DefaultRootDir
	DefaultRuntimeEndpoint = kubeletconfig.DefaultRuntimeEndpoint
	// SystemdPath is the PATH systemd gives a service that sets none.
	SystemdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
)

// KubeletConfigOf reads the kubelet config in effect, once per check run:
// --config from the kubelet unit (kubeadm's 10-kubeadm.conf sets it through
// $KUBELET_CONFIG_ARGS), else /var/lib/kubelet/config.yaml; then the
// --config-dir drop-ins and the --max-pods and --feature-gates flags, which
// the kubelet applies over the file. A missing file is not an error
// (Exists is false, defaults apply); an unreadable or invalid one sets
// Err.
func KubeletConfigOf(env *checks.Env) *KubeletConfig {
	return once(env, "kubelet.config", loadKubelet)
}

// kubeletBools are kubelet flags that take no value when written alone.
var kubeletBools = map[string]bool{
	"fail-swap-on": true, "register-node": true, "rotate-certificates": true,
	"rotate-server-certificates": true, "enable-server": true,
}

const defaultEndpointFrom = "the default (no --container-runtime-endpoint or containerRuntimeEndpoint)"

func loadKubelet(env *checks.Env) *KubeletConfig {
	k := &KubeletConfig{
		Path: kubeletconfig.DefaultPath, Source: "default",
		MaxPods: DefaultMaxPods, IDsPerPod: DefaultIDsPerPod,
		MaxPodsFrom: "default", IDsPerPodFrom: "default",
		RootDir: DefaultKubeletRootDir, RootDirFrom: "the default (no --root-dir)",
		RuntimeEndpoint: DefaultRuntimeEndpoint, RuntimeEndpointFrom: defaultEndpointFrom,
		ExecPath: SystemdPath, ExecPathFrom: "systemd's default",
	}
	flags := k.loadUnit(env)
	if f, ok := lastFlag(flags, "config"); ok && f.Value != "" {
		k.Path, k.Source, k.ConfigFlag = absPath(f.Value), "--config in "+f.Where(), true
	}
	if f, ok := lastFlag(flags, "root-dir"); ok && f.Value != "" {
		k.RootDir, k.RootDirFrom = absPath(f.Value), "--root-dir in "+f.Where()
	}

	data, err := env.Host.ReadFile(k.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		k.Exists, k.Err = true, err
	default:
		k.Exists = true
		c, err := kubeletconfig.Parse(bytes.NewReader(data), k.Path)
		if err != nil {
			k.Err = err
		} else {
			k.apply(c)
		}
	}

	if f, ok := lastFlag(flags, "config-dir"); ok && f.Value != "" && k.Err == nil {
		k.ConfigDir = absPath(f.Value)
		k.loadDropIns(env, k.ConfigDir, f.Where())
	}
	if f, ok := lastFlag(flags, "max-pods"); ok && k.Err == nil {
		n, err := strconv.ParseInt(f.Value, 10, 32)
		if err != nil || n < 0 {
			k.Err = fmt.Errorf("%s: --max-pods %q is not a number of pods", f.Where(), f.Value)
		} else {
			k.MaxPods, k.MaxPodsFrom = int(n), "--max-pods in "+f.Where()
		}
	}
	if f, ok := lastFlag(flags, "container-runtime-endpoint"); ok && f.Value != "" {
		k.RuntimeEndpoint, k.RuntimeEndpointFrom = f.Value, "--container-runtime-endpoint in "+f.Where()
	}
	for _, f := range flags {
		if f.Name != "feature-gates" || k.Err != nil {
			continue
		}
		gates, err := kubeletconfig.ParseFeatureGates(f.Value)
		if err != nil {
			k.Err = fmt.Errorf("%s: %v", f.Where(), err)
			break
		}
		for g, v := range gates {
			k.setGate(g, v, "--feature-gates in "+f.Where())
		}
	}
	return k
}

// loadUnit reads the kubelet's unit: its flags (returned), the executable
// and the PATH it starts with.
func (k *KubeletConfig) loadUnit(env *checks.Env) []systemd.Flag {
	u, err := systemd.Load(env.Host, KubeletUnit)
	if errors.Is(err, systemd.ErrNotFound) {
		return nil
	}
	if err != nil {
		k.Notes = append(k.Notes, fmt.Sprintf("%s could not be read: %v", KubeletUnit, err))
		return nil
	}
	execs := u.All("Service", "ExecStart")
	if len(execs) == 0 {
		return nil
	}
	vars, _, _ := u.Environment(env.Host)
	if p, ok := vars["PATH"]; ok {
		k.ExecPath, k.ExecPathFrom = p.Value, fmt.Sprintf("Environment=PATH in %s line %d", p.File, p.Line)
	}
	cmds, err := systemd.Commands(execs[len(execs)-1], vars)
	if err != nil || len(cmds) == 0 {
		if err != nil {
			k.Notes = append(k.Notes, err.Error())
		}
		return nil
	}
	k.Binary = cmds[0].Argv[0].Text
	return systemd.ParseFlags(cmds[0].Argv, systemd.FlagSyntax{IsBool: func(n string) bool { return kubeletBools[n] }})
}

// apply takes the values a config file (or drop-in) sets.
func (k *KubeletConfig) apply(c *kubeletconfig.Config) {
	if c.MaxPodsLine > 0 {
		k.MaxPods, k.MaxPodsFrom = c.MaxPods, fmt.Sprintf("%s line %d", c.Name, c.MaxPodsLine)
	}
	if c.IDsPerPodLine > 0 {
		k.IDsPerPod, k.IDsPerPodFrom, k.IDsPerPodSet = c.IDsPerPod, fmt.Sprintf("%s line %d", c.Name, c.IDsPerPodLine), true
	}
	gates := make([]string, 0, len(c.FeatureGates))
	for g := range c.FeatureGates {
		gates = append(gates, g)
	}
	sort.Strings(gates)
	for _, g := range gates {
		k.setGate(g, c.FeatureGates[g], fmt.Sprintf("%s line %d", c.Name, c.FeatureGateLines[g]))
	}
	if c.ContainerRuntimeEndpoint != "" {
		k.RuntimeEndpoint, k.RuntimeEndpointFrom = c.ContainerRuntimeEndpoint, fmt.Sprintf("%s line %d", c.Name, c.ContainerRuntimeEndpointLine)
	}
	k.Notes = append(k.Notes, c.Notes...)
}

func (k *KubeletConfig) setGate(g string, v bool, from string) {
	if k.FeatureGates == nil {
		k.FeatureGates, k.GateFrom = map[string]bool{}, map[string]string{}
	}
	k.FeatureGates[g], k.GateFrom[g] = v, from
}

// loadDropIns merges the kubelet's --config-dir files over the config
// file as the kubelet does (mergeKubeletConfigurations): it walks dir
// recursively (filepath.WalkDir: lexical order, subdirectories in place)
// and merges every *.conf file. A dir that cannot be walked (missing)
// stops the kubelet.
func (k *KubeletConfig) loadDropIns(env *checks.Env, dir, where string) {
	var walk func(d string) error
	walk = func(d string) error {
		ents, err := env.Host.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := path.Join(d, e.Name())
			if e.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			if path.Ext(e.Name()) != ".conf" {
				continue
			}
			data, err := env.Host.ReadFile(p)
			if err != nil {
				return err
			}
			// An unknown version is held to the newer, stricter rule.
			needAPI := env.Kube == nil || env.KubeAtLeast(rules.KubeletDropInAPIVersion.Value)
			c, err := kubeletconfig.ParseDropIn(bytes.NewReader(data), p, needAPI)
			if err != nil {
				return err
			}
			k.apply(c)
			k.DropIns = append(k.DropIns, p)
		}
		return nil
	}
	if err := walk(dir); err != nil {
		var in *errs.Input
		if errors.As(err, &in) {
			k.Err = err
			return
		}
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("lstat %s: no such file or directory", dir) // filepath.WalkDir's first step
		}
		k.Err = fmt.Errorf("--config-dir %s (%s) cannot be walked (`failed to merge kubelet configs: failed to walk through kubelet dropin directory %q: %v`)", dir, where, dir, err)
		k.ErrFix = fmt.Sprintf("create the directory (`mkdir -p %s`) or remove --config-dir from %s, then restart the kubelet", dir, where)
	}
}

// GateSet returns a feature gate's value and whether anything sets it.
func (k *KubeletConfig) GateSet(g string) (value, set bool) {
	v, ok := k.FeatureGates[g]
	return v, ok
}

// UserNSGate is the kubelet's UserNamespacesSupport as it will run: the
// value set, else the version's default (on from rules.KubeletUserNSDefaultOn;
// locked on from rules.KubeletUserNSGA). why says which, for messages.
func (k *KubeletConfig) UserNSGate(env *checks.Env) (on bool, why string) {
	const gate = "UserNamespacesSupport"
	if v, set := k.GateSet(gate); set {
		return v, fmt.Sprintf("%s: %t (%s)", gate, v, k.GateFrom[gate])
	}
	kube := kubeName(env)
	if env.Kube == nil {
		return true, fmt.Sprintf("%s is on by default from Kubernetes %s, assumed when no version is known", gate, rules.KubeletUserNSDefaultOn)
	}
	if env.KubeAtLeast(rules.KubeletUserNSDefaultOn.Value) {
		return true, fmt.Sprintf("%s is on by default in %s", gate, kube)
	}
	return false, fmt.Sprintf("%s is off by default in %s", gate, kube)
}

// Unit is the block of ids the kubelet gives each pod: userNamespaces.
// idsPerPod from rules.KubeletIDsPerPodHonoured on (when it is valid;
// kubelet.config fails an invalid one), 65536 before (the field is unknown
// before 1.33 and ignored in 1.33–1.34). why says which.
func (k *KubeletConfig) Unit(env *checks.Env) (unit uint64, why string) {
	v := k.IDsPerPod
	valid := v >= rules.KubeletUnitIDs && v%rules.KubeletUnitIDs == 0 && v <= rules.KubeletIDsPerPodMaxN
	switch {
	case !k.IDsPerPodSet:
		return rules.KubeletUnitIDs, "the default idsPerPod"
	case !env.KubeAtLeast(rules.KubeletIDsPerPodHonoured.Value):
		return rules.KubeletUnitIDs, fmt.Sprintf("idsPerPod %d (%s) is ignored before Kubernetes %s", v, k.IDsPerPodFrom, rules.KubeletIDsPerPodHonoured)
	case !valid:
		return rules.KubeletUnitIDs, fmt.Sprintf("idsPerPod %d (%s) is invalid", v, k.IDsPerPodFrom)
	}
	return uint64(v), fmt.Sprintf("idsPerPod %d from %s", v, k.IDsPerPodFrom)
}

// kubeName is "Kubernetes 1.33.1", saying when the version was assumed.
func kubeName(env *checks.Env) string {
	if env.Kube == nil {
		return "an unknown Kubernetes version"
	}
	s := "Kubernetes " + env.Kube.String()
	if strings.HasPrefix(env.KubeSource, "assumed") {
		s += " (" + env.KubeSource + ")"
	}
	return s
}

// KubeletIDs is how the kubelet will come by its id range at start
// (getKubeletMappings, then MakeUserNsManager), as far as the host tells.
type KubeletIDs struct {
	// Gate is UserNamespacesSupport as the kubelet runs with it; with it
	// off the kubelet never looks at the user, getsubids or the files.
	Gate    bool
	GateWhy string
	// Unit is the block per pod and UnitWhy where it comes from.
	Unit    uint64
	UnitWhy string
	// MaxPods is the kubelet's maxPods; MaxPodsWhy says where from.
	MaxPods    int
	MaxPodsWhy string

	// User is how user.Lookup("kubelet") answers.
	User KubeletUserLookup

	// Getsubids is where the kubelet finds getsubids ("" when it does
	// not); GetsubidsWhy explains a miss.
	Getsubids, GetsubidsWhy string
	// UIDOut, GIDOut and the exits are what `getsubids kubelet` and
	// `getsubids -g kubelet` printed on stdout.
	UIDOut, GIDOut   string
	UIDExit, GIDExit int
	// UIDErr and GIDErr are what they printed on stderr, trimmed.
	UIDErr, GIDErr string
	// Derived says the outputs were derived from /etc/subuid and
	// /etc/subgid in a snapshot tree whose files no longer match the
	// recorded outputs (an apply --root wrote them since).
	Derived string
	// RunErr is a getsubids that could not be run at all.
	RunErr error

	// Default is true when the kubelet uses its default range.
	Default bool
	// Range is the range the kubelet will use, valid when Known.
	Range ids.Range
	Known bool
	// Refusal is the reason the kubelet stops before it has a range
	// (U2–U9: the user lookup, getsubids, its output).
	Refusal *remap.Violation
}

// KubeletUserLookup is user.Lookup("kubelet") as the kubelet will do it.
type KubeletUserLookup struct {
	Found bool
	UID   int
	// Where names the source: "/etc/passwd", "`getent passwd kubelet`
	// (nsswitch passwd: files sss)".
	Where string
	// Files is true when /etc/passwd has it (apply can manage it).
	Files bool
	// Err is a lookup that fails (the kubelet does not start).
	Err error
	// Unsure says why a miss in /etc/passwd may not be the kubelet's
	// answer: a cgo kubelet also asks the NSS sources named here.
	Unsure string
}

// KubeletIDsOf resolves the kubelet's range once per run.
func KubeletIDsOf(ctx context.Context, env *checks.Env) *KubeletIDs {
	return once(env, "kubelet.ids", func(env *checks.Env) *KubeletIDs { return loadKubeletIDs(ctx, env) })
}

func loadKubeletIDs(ctx context.Context, env *checks.Env) *KubeletIDs {
	k := KubeletConfigOf(env)
	x := &KubeletIDs{MaxPods: DefaultMaxPods, MaxPodsWhy: "the default"}
	x.Gate, x.GateWhy = k.UserNSGate(env)
	x.Unit, x.UnitWhy = k.Unit(env)
	if k.Err == nil {
		x.MaxPods, x.MaxPodsWhy = k.MaxPods, k.MaxPodsFrom
		if x.MaxPodsWhy == "default" {
			x.MaxPodsWhy = "the default"
		}
	} else {
		x.MaxPodsWhy = fmt.Sprintf("assumed: %s does not load", k.Path)
	}
	x.User = lookupKubeletUser(ctx, env, k)
	switch {
	case x.User.Err != nil:
		x.Refusal = &remap.Violation{Rule: "user-lookup", Kubelet: x.User.Err.Error(),
			Reason: fmt.Sprintf("user.Lookup(%q) fails", remap.KubeletUser)}
		return x
	case !x.User.Found:
		x.Default, x.Known, x.Range = true, true, remap.KubeletDefaultRange(x.Unit)
		return x
	}
	x.Getsubids, x.GetsubidsWhy = findGetsubids(env, k)
	if x.Getsubids == "" {
		x.Refusal = &remap.Violation{Rule: "getsubids", Kubelet: `exec: "getsubids": executable file not found in $PATH`,
			Reason: "getsubids is not on the kubelet's PATH (" + x.GetsubidsWhy + ")"}
		return x
	}
	x.runGetsubids(ctx, env)
	if x.RunErr != nil {
		return x
	}
	var v *remap.Violation
	x.Range, v = remap.ParseKubeletMappings(x.UIDOut, x.UIDExit, x.GIDOut, x.GIDExit)
	switch {
	case v != nil && x.UIDExit != 0 && x.UIDErr != "":
		v.Reason += fmt.Sprintf(", printing %q", x.UIDErr)
	case v != nil && x.UIDExit == 0 && x.GIDExit != 0 && x.GIDErr != "":
		v.Reason += fmt.Sprintf(", printing %q", x.GIDErr)
	}
	x.Refusal, x.Known = v, v == nil
	return x
}

// lookupKubeletUser follows os/user.Lookup: a kubelet built without cgo
// (or with -tags osusergo) reads /etc/passwd only; one built with cgo asks
// getpwnam_r, so every source of nsswitch.conf's `passwd:` line. An
// unreadable /etc/passwd is an error the kubelet stops on (it only falls
// back to its default range on user.UnknownUserError).
func lookupKubeletUser(ctx context.Context, env *checks.Env, k *KubeletConfig) KubeletUserLookup {
	data, err := env.Host.ReadFile(PasswdFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return KubeletUserLookup{Err: err}
	}
	if err == nil {
		users, perr := user.ParsePasswdFilter(bytes.NewReader(data), func(u user.User) bool { return u.Name == remap.KubeletUser })
		if perr != nil {
			return KubeletUserLookup{Err: accountErr(PasswdFile, perr)}
		}
		if len(users) > 0 {
			return KubeletUserLookup{Found: true, UID: users[0].Uid, Where: PasswdFile, Files: true}
		}
	}
	pureGo, build := kubeletBuild(env, k)
	if pureGo {
		if err != nil { // a pure-Go lookup opens /etc/passwd and fails
			return KubeletUserLookup{Err: err}
		}
		return KubeletUserLookup{Where: PasswdFile + " (" + build + ": /etc/passwd only)"}
	}
	srcs, line := passwdSources(env)
	var others []string
	for _, s := range srcs {
		switch s {
		case "files", "compat":
		case "systemd":
			// nss-systemd serves dynamic users (never "kubelet") and
			// userdb records, which are files a snapshot holds.
			if uid, where, ok := userdbRecord(env); ok {
				return KubeletUserLookup{Found: true, UID: uid, Where: where + " (nss-systemd)"}
			}
		case "mymachines", "myhostname", "resolve":
			// users of containers (vu-*), not of this host
		default:
			others = append(others, s)
		}
	}
	if len(others) == 0 {
		return KubeletUserLookup{Where: PasswdFile}
	}
	ns := fmt.Sprintf("%s:%d `passwd: %s`", NSSwitchFile, line, strings.Join(srcs, " "))
	out, rerr := env.Run.Run(ctx, "getent", "passwd", remap.KubeletUser)
	var re *run.Error
	switch {
	case rerr == nil:
		f := strings.Split(strings.TrimSpace(string(out.Stdout)), ":")
		if len(f) >= 3 && f[0] == remap.KubeletUser {
			uid, _ := strconv.Atoi(f[2])
			return KubeletUserLookup{Found: true, UID: uid, Where: fmt.Sprintf("`getent passwd %s` (%s)", remap.KubeletUser, ns)}
		}
	case errors.As(rerr, &re) && out.Exit == 2: // getent: key not found
		return KubeletUserLookup{Where: fmt.Sprintf("%s and `getent passwd %s` (%s)", PasswdFile, remap.KubeletUser, ns)}
	}
	return KubeletUserLookup{Where: PasswdFile, Unsure: fmt.Sprintf("%s also names %s, which a kubelet built with cgo asks too (%s); `getent passwd %s` tells", ns, strings.Join(others, ", "), build, remap.KubeletUser)}
}

// userdbDirs are where systemd-userdbd and nss-systemd read JSON user
// records (userdb(5)'s drop-in directories).
var userdbDirs = []string{"/etc/userdb", "/run/userdb", "/run/host/userdb", "/usr/local/lib/userdb", "/usr/lib/userdb"}

// userdbRecord finds a userdb record for the kubelet user.
func userdbRecord(env *checks.Env) (uid int, where string, ok bool) {
	for _, d := range userdbDirs {
		p := path.Join(d, remap.KubeletUser+".user")
		data, err := env.Host.ReadFile(p)
		if err != nil {
			continue
		}
		var rec struct {
			UID int `json:"uid"`
		}
		_ = json.Unmarshal(data, &rec)
		return rec.UID, p, true
	}
	return 0, "", false
}

// kubeletBuild reads the kubelet binary's Go build info (live hosts
// only): built without cgo, or with -tags osusergo, its os/user reads
// /etc/passwd only.
func kubeletBuild(env *checks.Env, k *KubeletConfig) (pureGo bool, why string) {
	if !env.Host.Live() {
		return false, "its build is not recorded"
	}
	bin := k.Binary
	if bin == "" || !path.IsAbs(bin) {
		p, err := exec.LookPath(versions.Kubelet) // finds the file; runs nothing
		if err != nil {
			return false, "no kubelet binary to read"
		}
		bin = p
	}
	f, err := env.Host.OpenMetadata(bin)
	if err != nil {
		return false, "its binary cannot be read"
	}
	defer f.Close()
	bi, err := buildinfo.Read(f)
	if err != nil {
		return false, "its build info cannot be read"
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "CGO_ENABLED" && s.Value == "0":
			return true, bin + " is built without cgo"
		case s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), "osusergo"):
			return true, bin + " is built with -tags osusergo"
		}
	}
	return false, bin + " is built with cgo"
}

// passwdSources are the services of nsswitch.conf's first `passwd:` line
// (action items such as [NOTFOUND=return] left out); glibc's default,
// files, when there is no file or no line.
func passwdSources(env *checks.Env) ([]string, int) {
	data, err := env.Host.ReadFile(NSSwitchFile)
	if err != nil {
		return []string{"files"}, 0
	}
	for no, l := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		db, rest, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(db) != "passwd" {
			continue
		}
		var out []string
		for _, w := range strings.Fields(rest) {
			if !strings.HasPrefix(w, "[") && !strings.HasSuffix(w, "]") {
				out = append(out, w)
			}
		}
		if len(out) > 0 {
			return out, no + 1
		}
	}
	return []string{"files"}, 0
}

// KubeletGetsubids is where the kubelet finds getsubids on its PATH ("" when
// it does not) and, then, why not.
func KubeletGetsubids(env *checks.Env) (where, why string) {
	return findGetsubids(env, KubeletConfigOf(env))
}

// findGetsubids is exec.LookPath("getsubids") with the kubelet's PATH. On
// the live host each PATH directory is looked in; a snapshot has the
// recorded commands only.
func findGetsubids(env *checks.Env, k *KubeletConfig) (where, why string) {
	pathWhy := fmt.Sprintf("PATH=%s, %s", k.ExecPath, k.ExecPathFrom)
	if !env.Host.Live() {
		// A snapshot records getsubids under the path it was run by:
		// one of the kubelet's PATH directories, or (older snapshots,
		// the same directory on usernsctl's PATH) the bare name.
		for _, dir := range filepath.SplitList(k.ExecPath) {
			if p := path.Join(dir, "getsubids"); path.IsAbs(dir) && env.Run.Installed(p) {
				return p, ""
			}
		}
		if env.Run.Installed("getsubids") {
			return "getsubids", ""
		}
		return "", "not installed; " + pathWhy
	}
	for _, dir := range filepath.SplitList(k.ExecPath) {
		if dir == "" || !path.IsAbs(dir) {
			continue
		}
		p := path.Join(dir, "getsubids")
		if fi, err := env.Host.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, ""
		}
	}
	if env.Run.Installed("getsubids") {
		p, _ := exec.LookPath("getsubids")
		return "", fmt.Sprintf("%s is on usernsctl's PATH but not the kubelet's: %s", p, pathWhy)
	}
	return "", "not installed; " + pathWhy
}

// runGetsubids runs both lookups with the getsubids the kubelet finds on
// its own PATH (x.Getsubids): usernsctl's PATH may differ, and the
// kubelet's is the one that decides (a snapshot records them by name).
func (x *KubeletIDs) runGetsubids(ctx context.Context, env *checks.Env) {
	one := func(argv ...string) (string, int, string, error) {
		out, err := env.Run.Run(ctx, argv...)
		var re *run.Error
		if err != nil && !errors.As(err, &re) {
			return "", 0, "", err
		}
		return string(out.Stdout), out.Exit, strings.TrimSpace(string(out.Stderr)), nil
	}
	var err error
	if x.UIDOut, x.UIDExit, x.UIDErr, err = one(x.Getsubids, remap.KubeletUser); err != nil {
		x.RunErr = err
		return
	}
	if x.GIDOut, x.GIDExit, x.GIDErr, err = one(x.Getsubids, "-g", remap.KubeletUser); err != nil {
		x.RunErr = err
		return
	}
	x.deriveFromFiles(env)
}

// deriveFromFiles: in a snapshot tree, getsubids' recorded answer is what
// the host said when it was taken. With `subid: files` getsubids prints
// the kubelet user's lines of /etc/subuid and /etc/subgid (by name or
// uid, in file order), so when those files are clean and say otherwise
// now (`apply --root` wrote them), what they say now is judged.
func (x *KubeletIDs) deriveFromFiles(env *checks.Env) {
	if env.Host.Live() || !NSSwitchOf(env).Subid.Files() {
		return
	}
	s := SubIDsOf(env)
	keys := []string{remap.KubeletUser, strconv.Itoa(x.User.UID)}
	side := func(f SubIDFile) (string, int, bool) {
		if f.Err != nil {
			return "", 0, false
		}
		if f.File == nil {
			return "", 1, true
		}
		var rs []ids.Range
		for _, p := range f.File.Problems() {
			if p.Kind != subid.Comment && p.Kind != subid.Blank {
				return "", 0, false
			}
		}
		for _, l := range f.File.Ranges() {
			if slices.Contains(keys, l.Range.Owner) {
				rs = append(rs, l.Range.Range)
			}
		}
		if len(rs) == 0 {
			return "", 1, true
		}
		return remap.GetsubidsOutput(remap.KubeletUser, rs), 0, true
	}
	uo, ue, ok1 := side(s.UID)
	gout, ge, ok2 := side(s.GID)
	if !ok1 || !ok2 || (uo == x.UIDOut && ue == x.UIDExit && gout == x.GIDOut && ge == x.GIDExit) {
		return
	}
	x.Derived = fmt.Sprintf("the recorded getsubids outputs (%q, %q) no longer match %s and %s, which were written since: judged on what getsubids prints for them now", x.UIDOut, x.GIDOut, s.UID.Path, s.GID.Path)
	x.UIDOut, x.UIDExit, x.GIDOut, x.GIDExit = uo, ue, gout, ge
	x.UIDErr, x.GIDErr = errFetching(ue), errFetching(ge)
}

// errFetching is getsubids' stderr for an exit status.
func errFetching(exit int) string {
	if exit != 0 {
		return "Error fetching ranges"
	}
	return ""
}

// KubeletPods are the pods' user namespace records under the kubelet's
// root dir, as MakeUserNsManager reads them at start.
type KubeletPods struct {
	// Dir is RootDir/pods; Exists is false when it is missing (fine).
	Dir    string
	Exists bool
	// Pods counts the pod directories; Records are their userns files.
	Pods    int
	Records []remap.PodRecord
	// Err is a directory or file the kubelet cannot read: it stops.
	Err error
}

// KubeletPodsOf lists <root-dir>/pods/*/userns once per run.
func KubeletPodsOf(env *checks.Env) *KubeletPods {
	return once(env, "kubelet.pods", func(env *checks.Env) *KubeletPods {
		k := KubeletConfigOf(env)
		p := &KubeletPods{Dir: path.Join(k.RootDir, "pods")}
		ents, err := env.Host.ReadDir(p.Dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return p
		case err != nil:
			p.Exists, p.Err = true, fmt.Errorf("read pods from disk: %w", err)
			return p
		}
		p.Exists = true
		for _, e := range ents {
			if !e.IsDir() { // os.ReadDir's IsDir: a symlink is no pod
				continue
			}
			p.Pods++
			f := path.Join(p.Dir, e.Name(), "userns")
			data, err := env.Host.ReadFile(f)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue
			case err != nil:
				p.Err = err
				return p
			}
			p.Records = append(p.Records, remap.PodRecord{Pod: e.Name(), Path: f, Data: data})
		}
		return p
	})
}

// KubeletCRI is the runtime behind the kubelet's CRI socket, told by the
// socket's name (crio.sock, containerd.sock): "crio", "containerd", or ""
// for another socket, an unreadable kubelet config, or no endpoint set (the
// kubelet's default names containerd, but a node being prepared for CRI-O
// often has no kubelet config yet: the default decides nothing).
type KubeletCRI struct {
	Runtime, Endpoint, From string
}

// KubeletCRIOf reads KubeletConfigOf's endpoint.
func KubeletCRIOf(env *checks.Env) KubeletCRI {
	k := KubeletConfigOf(env)
	if k.Err != nil || k.RuntimeEndpointFrom == defaultEndpointFrom {
		return KubeletCRI{}
	}
	c := KubeletCRI{Endpoint: k.RuntimeEndpoint, From: k.RuntimeEndpointFrom}
	switch base := path.Base(k.RuntimeEndpoint); {
	case strings.Contains(base, "crio"):
		c.Runtime = versions.Crio
	case strings.Contains(base, "containerd"):
		c.Runtime = versions.Containerd
	}
	return c
}

// OtherCRI says, for the Kubernetes target, why runtime is not judged: the
// kubelet talks to another one (a node may have both installed).
func OtherCRI(env *checks.Env, runtime string) (why string, other bool) {
	if env.Target != checks.Kubernetes {
		return "", false
	}
	c := KubeletCRIOf(env)
	if c.Runtime == "" || c.Runtime == runtime {
		return "", false
	}
	return fmt.Sprintf("the kubelet talks to %s (%s, %s), not %s", criName(c.Runtime), c.Endpoint, c.From, criName(runtime)), true
}

// WhereKubeletUses wraps a check of runtime alone: for Kubernetes it skips,
// saying why, where the kubelet talks to another runtime.
func WhereKubeletUses(runtime string, fn func(context.Context, *checks.Env) checks.Result) func(context.Context, *checks.Env) checks.Result {
	return func(ctx context.Context, env *checks.Env) checks.Result {
		if why, other := OtherCRI(env, runtime); other {
			return checks.Skipf("%s", why)
		}
		return fn(ctx, env)
	}
}

func criName(runtime string) string {
	if runtime == versions.Crio {
		return "CRI-O"
	}
	return runtime
}
