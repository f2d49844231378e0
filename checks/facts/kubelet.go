package facts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"

	"github.com/usernsctl/usernsctl/checks"
	kubeletconfig "github.com/usernsctl/usernsctl/config/kubelet"
	"github.com/usernsctl/usernsctl/config/systemd"
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
	// (with line): the kubelet will not start with it.
	Err error

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
	// DropIns are the --config-dir files merged over the config file.
	DropIns []string
	// Notes are things the kubelet accepts with a warning, and problems
	// reading its unit.
	Notes []string
}

// KubeletUnit is the systemd unit the kubelet runs as.
const KubeletUnit = "kubelet.service"

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

func loadKubelet(env *checks.Env) *KubeletConfig {
	k := &KubeletConfig{
		Path: kubeletconfig.DefaultPath, Source: "default",
		MaxPods: DefaultMaxPods, IDsPerPod: DefaultIDsPerPod,
		MaxPodsFrom: "default", IDsPerPodFrom: "default",
	}
	flags, notes := unitFlags(env, KubeletUnit, systemd.FlagSyntax{IsBool: func(n string) bool { return kubeletBools[n] }})
	k.Notes = append(k.Notes, notes...)
	if f, ok := lastFlag(flags, "config"); ok && f.Value != "" {
		k.Path, k.Source = absPath(f.Value), "--config in "+f.Where()
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
		k.loadDropIns(env, absPath(f.Value))
	}
	if f, ok := lastFlag(flags, "max-pods"); ok && k.Err == nil {
		n, err := strconv.ParseInt(f.Value, 10, 32)
		if err != nil || n < 0 {
			k.Err = fmt.Errorf("%s: --max-pods %q is not a number of pods: the kubelet will not start", f.Where(), f.Value)
		} else {
			k.MaxPods, k.MaxPodsFrom = int(n), "--max-pods in "+f.Where()
		}
	}
	for _, f := range flags {
		if f.Name != "feature-gates" || k.Err != nil {
			continue
		}
		gates, err := kubeletconfig.ParseFeatureGates(f.Value)
		if err != nil {
			k.Err = fmt.Errorf("%s: %v: the kubelet will not start", f.Where(), err)
			break
		}
		for g, v := range gates {
			k.setGate(g, v, "--feature-gates in "+f.Where())
		}
	}
	return k
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
	k.Notes = append(k.Notes, c.Notes...)
}

func (k *KubeletConfig) setGate(g string, v bool, from string) {
	if k.FeatureGates == nil {
		k.FeatureGates, k.GateFrom = map[string]bool{}, map[string]string{}
	}
	k.FeatureGates[g], k.GateFrom[g] = v, from
}

// loadDropIns merges the kubelet's --config-dir files (*.conf, in name
// order) over the config file, as the kubelet does.
func (k *KubeletConfig) loadDropIns(env *checks.Env, dir string) {
	files, err := env.Host.Glob(path.Join(dir, "*.conf"))
	if err != nil {
		k.Err = err
		return
	}
	for _, p := range files {
		data, err := env.Host.ReadFile(p)
		if err == nil {
			var c *kubeletconfig.Config
			if c, err = kubeletconfig.Parse(bytes.NewReader(data), p); err == nil {
				k.apply(c)
				k.DropIns = append(k.DropIns, p)
				continue
			}
		}
		k.Err = err
		return
	}
}

// GateSet returns a feature gate's value and whether anything sets it.
func (k *KubeletConfig) GateSet(g string) (value, set bool) {
	v, ok := k.FeatureGates[g]
	return v, ok
}
