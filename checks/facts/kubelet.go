package facts

import (
	"errors"

	"github.com/usernsctl/usernsctl/checks"
)

// Kubelet defaults (KubeletConfiguration).
const (
	DefaultMaxPods   = 110
	DefaultIDsPerPod = 65536
)

// Kubelet is the kubelet's configuration as far as user namespaces care.
type Kubelet struct {
	Path   string // /var/lib/kubelet/config.yaml unless the unit says otherwise
	Exists bool
	// MaxPods and IDsPerPod carry the defaults when unset.
	MaxPods      int
	IDsPerPod    int64
	FeatureGates map[string]bool
	// ParseErr is a syntax error with line.
	ParseErr error
}

// KubeletConfig reads the kubelet config.
// TODO(daemons helper): implement.
func KubeletConfig(env *checks.Env) (*Kubelet, error) {
	return nil, errors.New("facts.KubeletConfig: not implemented yet")
}
