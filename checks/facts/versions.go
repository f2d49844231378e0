package facts

import (
	"bytes"
	"context"
	"fmt"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/internal/versions"
)

// Program is an installed program's version, or why it is not known.
type Program struct {
	Name      string
	Installed bool
	Version   versions.Parsed // valid when Err == nil and Installed
	// Err is set when the program is installed but its version could not
	// be read or parsed; it keeps the command's output.
	Err error
}

// Known reports whether a usable version was read.
func (p Program) Known() bool { return p.Installed && p.Err == nil && p.Version.Core != nil }

// VersionOf runs `NAME --version` (once per check run, through env.Run) and
// parses it. A program that is not installed is not an error.
func VersionOf(ctx context.Context, env *checks.Env, name string) Program {
	return once(env, "version."+name, func(env *checks.Env) Program {
		if v, ok := fromBuildInfo(env, name); ok {
			return Program{Name: name, Installed: true, Version: v}
		}
		out, err := env.Run.Run(ctx, name, "--version")
		if run.IsNotFound(err) {
			return Program{Name: name}
		}
		if err != nil {
			return Program{Name: name, Installed: true, Err: err}
		}
		v, perr := versions.FromOutput(name, bytes.NewReader(out.Stdout))
		if perr != nil {
			return Program{Name: name, Installed: true, Err: fmt.Errorf("%w (output: %q)", perr, firstLine(out.Stdout))}
		}
		return Program{Name: name, Installed: true, Version: v}
	})
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 120 {
		b = b[:120]
	}
	return string(b)
}
