package facts

import (
	"debug/buildinfo"
	"os/exec"
	"regexp"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// linkedVersion matches the version a Go binary's build recorded with
// `-X …Version=V`, the very string its --version prints. Debian 12 builds
// dockerd this way; many builds do not (then the command runs).
var linkedVersion = map[string]*regexp.Regexp{
	versions.Dockerd:    regexp.MustCompile(`-X\s+\\?"?github\.com/docker/docker/dockerversion\.Version=([^"\\\s]+)`),
	versions.Containerd: regexp.MustCompile(`-X\s+\\?"?github\.com/containerd/containerd(?:/v2)?/version\.Version=([^"\\\s]+)`),
}

// fromBuildInfo reads a program's version from its Go build info instead
// of starting it: `dockerd --version` takes about 120 ms (it initialises
// the whole daemon package tree), the build info is a file read of under
// a millisecond. Live hosts only: a snapshot's commands.json is the
// record there.
func fromBuildInfo(env *checks.Env, name string) (versions.Parsed, bool) {
	re, ok := linkedVersion[name]
	if !ok || !env.Host.Live() {
		return versions.Parsed{}, false
	}
	path, err := exec.LookPath(name) // finds the file; runs nothing
	if err != nil {
		return versions.Parsed{}, false
	}
	f, err := env.Host.OpenMetadata(path)
	if err != nil {
		return versions.Parsed{}, false
	}
	defer f.Close()
	bi, err := buildinfo.Read(f)
	if err != nil {
		return versions.Parsed{}, false
	}
	for _, s := range bi.Settings {
		if s.Key != "-ldflags" {
			continue
		}
		if m := re.FindStringSubmatch(s.Value); m != nil {
			if v, err := versions.Parse(m[1]); err == nil {
				return v, true
			}
		}
	}
	return versions.Parsed{}, false
}
