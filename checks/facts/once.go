package facts

import (
	"github.com/usernsctl/usernsctl/checks"
)

// once loads the fact key at most once per env.
func once[T any](env *checks.Env, key string, load func(*checks.Env) T) T {
	v, _ := checks.Fact(env, key, func(env *checks.Env) (T, error) { return load(env), nil })
	return v
}

// fileReader is what the config loaders read through: the host seam.
type fileReader interface {
	ReadFile(p string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

// onceFS reads each file at most once for one loader: docker.service's
// option files are read both as EnvironmentFile= and to find flags the unit
// never passes on; containerd's main config is read for its version before
// it is loaded with its imports.
type onceFS struct {
	fileReader
	read map[string]readResult
}

type readResult struct {
	b   []byte
	err error
}

func newOnceFS(r fileReader) *onceFS { return &onceFS{fileReader: r, read: map[string]readResult{}} }

// ReadFile returns the file's content as read the first time.
func (r *onceFS) ReadFile(p string) ([]byte, error) {
	if got, ok := r.read[p]; ok {
		return got.b, got.err
	}
	b, err := r.fileReader.ReadFile(p)
	r.read[p] = readResult{b, err}
	return b, err
}
