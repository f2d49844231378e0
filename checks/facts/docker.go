package facts

import (
	"errors"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/remap"
)

// Docker is the daemon.json in effect and what it says.
type Docker struct {
	// Path is the daemon.json in effect; Source says how it was found
	// ("default", "--config-file in /lib/systemd/system/docker.service line 12").
	Path   string
	Source string
	Exists bool
	// Values is the parsed object; nil when the file is missing or bad.
	Values map[string]any
	// ParseErr is a syntax error with line and column.
	ParseErr error
	// Remap is the raw "userns-remap" value, "" when unset.
	Remap string
}

// DockerConfig locates and parses the daemon.json in effect.
// TODO(daemons helper): implement.
func DockerConfig(env *checks.Env) (*Docker, error) {
	return nil, errors.New("facts.DockerConfig: not implemented yet")
}

// DockerRemap resolves the remap spec: --user (env.User), else daemon.json's
// userns-remap, else "default". source says which ("--user", "daemon.json
// /etc/docker/daemon.json", "default").
// TODO(daemons helper): implement.
func DockerRemap(env *checks.Env) (spec remap.Spec, source string, err error) {
	return remap.Spec{}, "", errors.New("facts.DockerRemap: not implemented yet")
}
