// Package build says which usernsctl this is: the version the release
// build stamped (make build: -X …/internal/build.version=$(git describe)),
// else the module version or the VCS revision Go recorded, and the Go
// toolchain. Every JSON report names it, so that a fleet's outputs can be
// told apart.
package build

import (
	"runtime"
	"runtime/debug"
)

// version and commit are stamped by the Makefile; "" in a plain `go build`
// (Go's own VCS stamp, when it recorded one, fills the commit then).
var version, commit string

// Info is what `usernsctl version` prints.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// Get reads the build's identity.
func Get() Info {
	in := Info{Version: version, Commit: commit, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok && in.Commit == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				if s.Value == "true" && in.Commit != "" {
					in.Commit += "-dirty"
				}
			}
		}
	}
	if ok && in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		in.Version = bi.Main.Version
	}
	if in.Version == "" {
		in.Version = "devel"
		if len(in.Commit) >= 12 {
			in.Version += "+" + in.Commit[:12]
		}
	}
	return in
}

// Version is Get().Version.
func Version() string { return Get().Version }
