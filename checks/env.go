package checks

import (
	"sync"

	"github.com/hashicorp/go-version"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

// Env is everything a checker may read. Facts shared between checks (a
// parsed file, a version) are loaded once through Fact.
type Env struct {
	Host   *host.Host
	Run    run.Runner
	Probes probe.Prober

	Target Target
	// TargetSource says how Target was chosen ("--target", "detected: ...").
	TargetSource string
	// Kube is the Kubernetes version planned for; nil when unknown.
	Kube *version.Version
	// KubeSource says where Kube came from.
	KubeSource string
	// User is --user: the Docker remap user ("" = daemon.json, else default).
	User string

	mu    sync.Mutex
	facts map[string]*fact
}

type fact struct {
	once sync.Once
	val  any
	err  error
}

// Fact returns the value of load for key, computing it once per Env even
// when checks ask concurrently. Keys are package-qualified by convention
// ("subid.files").
func Fact[T any](env *Env, key string, load func(*Env) (T, error)) (T, error) {
	env.mu.Lock()
	if env.facts == nil {
		env.facts = map[string]*fact{}
	}
	f, ok := env.facts[key]
	if !ok {
		f = &fact{}
		env.facts[key] = f
	}
	env.mu.Unlock()
	f.once.Do(func() { f.val, f.err = load(env) })
	v, _ := f.val.(T)
	return v, f.err
}
