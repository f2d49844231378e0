package checks

import "strings"

// KernelRelease is the host's kernel release (/proc/sys/kernel/osrelease),
// or "" when it cannot be read. Every area needs it, so it lives here.
func KernelRelease(env *Env) string {
	rel, _ := Fact(env, "kernel.release", func(env *Env) (string, error) {
		b, err := env.Host.ReadFile("/proc/sys/kernel/osrelease")
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	})
	return rel
}
