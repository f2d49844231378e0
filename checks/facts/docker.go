package facts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/config/daemonjson"
	"github.com/usernsctl/usernsctl/config/systemd"
	"github.com/usernsctl/usernsctl/remap"
)

// Docker's host paths.
const (
	DaemonJSON      = "/etc/docker/daemon.json"
	SnapDaemonJSON  = "/var/snap/docker/current/config/daemon.json"
	DockerDefault   = "/etc/default/docker"   // Debian/Ubuntu: DOCKER_OPTS
	DockerSysconfig = "/etc/sysconfig/docker" // RHEL/Fedora: OPTIONS
	DefaultDataRoot = "/var/lib/docker"
	DockerService   = "docker.service"
)

// optionFiles are the distro files that hold extra dockerd flags, and the
// variable each uses. Whether dockerd gets them depends on the unit.
var optionFiles = []struct{ path, variable string }{
	{DockerDefault, "DOCKER_OPTS"},
	{DockerSysconfig, "OPTIONS"},
}

// DockerConfig is the daemon.json in effect and what it says.
type DockerConfig struct {
	// Path is the daemon.json in effect; Source says how it was found
	// ("default", "--config-file in /lib/systemd/system/docker.service line 12").
	Path   string
	Source string
	// Target is Path with its symbolic links followed: the file dockerd
	// reads and apply edits (the links stay). Path when it is no link.
	Target string
	Exists bool
	// Values is the parsed object; nil when the file is missing or bad.
	Values map[string]any
	// Err is why an existing Path could not be read (a directory, too
	// large, permission denied) or parsed (a *daemonjson.SyntaxError, with
	// line and column): dockerd refuses to start with it.
	Err error
	// Remap is the raw "userns-remap" value, "" when unset.
	Remap string

	// File is the parsed file, for locations and the editor; nil when the
	// file is missing or bad.
	File *daemonjson.File
	// RemapErr is a "userns-remap" that is not a string.
	RemapErr error
	// ConfigFlag is the --config-file flag that chose Path, when one did:
	// dockerd then refuses to start while the file is missing.
	ConfigFlag *systemd.Flag
	// Others are daemon.json files of other Docker installations (snap,
	// rootless) that are not the file in effect (field case 14).
	Others []OtherConfig
}

// OtherConfig is a daemon.json that the system dockerd does not read.
type OtherConfig struct {
	Path string
	// Kind is "default" (/etc/docker/daemon.json while --config-file
	// points elsewhere), "snap" or "rootless".
	Kind string
}

// DockerUnit is how systemd starts dockerd: docker.service, its drop-ins
// and the environment files they read.
type DockerUnit struct {
	// Unit is nil when no docker.service exists; Searched then lists where
	// it was looked for.
	Unit     *systemd.Unit
	Searched []string
	// Err is a unit file or drop-in systemd could not read.
	Err error
	// ExecStarts are the ExecStart= in effect after the drop-ins' resets;
	// more than one makes systemd refuse a Type=notify service.
	ExecStarts []systemd.Entry
	// Argv is the last effective ExecStart with variables expanded.
	Argv []systemd.Word
	// Flags are dockerd's flags from Argv, shorthands resolved.
	Flags []systemd.Flag
	// Problems are what systemd would log about the unit's files.
	Problems []systemd.Problem
	// EnvFiles are the unit's EnvironmentFile= settings.
	EnvFiles []systemd.EnvFileRef
	// Unread are flags set in /etc/default/docker or /etc/sysconfig/docker
	// that dockerd never sees, because the unit does not read that file or
	// variable.
	Unread []systemd.EnvVar
	// InitScript is set when there is no docker.service and the flags come
	// from the distro option files, which an init script passes on.
	InitScript bool
}

// Flag returns the last flag with one of the names (long form), which is
// the one dockerd uses.
func (u *DockerUnit) Flag(names ...string) (systemd.Flag, bool) {
	for i := len(u.Flags) - 1; i >= 0; i-- {
		for _, n := range names {
			if u.Flags[i].Name == n {
				return u.Flags[i], true
			}
		}
	}
	return systemd.Flag{}, false
}

var dockerdFlags = systemd.FlagSyntax{IsBool: daemonjson.IsBoolFlag, Long: daemonjson.LongFlag}

// DockerUnitOf loads docker.service with its drop-ins once per run.
func DockerUnitOf(env *checks.Env) *DockerUnit {
	return once(env, "docker.unit", loadDockerUnit)
}

func loadDockerUnit(env *checks.Env) *DockerUnit {
	du := &DockerUnit{}
	fsys := newOnceFS(env.Host)
	u, err := systemd.Load(fsys, DockerService)
	if errors.Is(err, systemd.ErrNotFound) {
		for _, d := range systemd.UnitDirs {
			du.Searched = append(du.Searched, path.Join(d, DockerService))
		}
		du.initScript(fsys)
		return du
	}
	if err != nil {
		du.Err = err
		return du
	}
	du.Unit, du.Searched = u, u.Searched
	du.Problems = u.Problems()
	envv, refs, probs := u.Environment(fsys)
	du.EnvFiles = refs
	du.Problems = append(du.Problems, probs...)
	du.ExecStarts = u.All("Service", "ExecStart")
	if n := len(du.ExecStarts); n > 0 {
		cmds, err := systemd.Commands(du.ExecStarts[n-1], envv)
		if err != nil {
			du.Problems = append(du.Problems, systemd.Problem{File: du.ExecStarts[n-1].File, Line: du.ExecStarts[n-1].Line, Msg: err.Error(), Fatal: true})
		} else if len(cmds) > 0 {
			du.Argv = cmds[0].Argv
			du.Flags = systemd.ParseFlags(du.Argv, dockerdFlags)
		}
	}
	du.unread(fsys, envv)
	return du
}

// unread finds option files whose flags the unit never passes to dockerd:
// the file is not an EnvironmentFile=, or its variable is not in ExecStart.
func (du *DockerUnit) unread(fsys systemd.Reader, envv systemd.Env) {
	used := map[string]bool{}
	for _, e := range du.ExecStarts {
		for _, v := range optionFiles {
			if strings.Contains(e.Value, "$"+v.variable) || strings.Contains(e.Value, "${"+v.variable+"}") {
				used[v.variable] = true
			}
		}
	}
	for _, of := range optionFiles {
		vars := readOptionFile(fsys, of.path)
		for _, v := range vars {
			if v.Name != of.variable || strings.TrimSpace(v.Value) == "" {
				continue
			}
			if got, ok := envv[of.variable]; ok && used[of.variable] && got.File == of.path && got.Line == v.Line {
				continue // passed on
			}
			du.Unread = append(du.Unread, v)
		}
	}
}

// initScript takes the flags from the option files when there is no unit:
// the sysvinit and upstart scripts of Debian and RHEL pass them on.
func (du *DockerUnit) initScript(fsys systemd.Reader) {
	argv := []systemd.Word{{Text: "dockerd"}}
	for _, of := range optionFiles {
		for _, v := range readOptionFile(fsys, of.path) {
			if v.Name != of.variable {
				continue
			}
			du.InitScript = true
			for _, f := range strings.Fields(v.Value) {
				argv = append(argv, systemd.Word{Text: f, File: v.File, Line: v.Line, Via: "$" + v.Name})
			}
		}
	}
	if du.InitScript {
		du.Argv = argv
		du.Flags = systemd.ParseFlags(argv, dockerdFlags)
	}
}

func readOptionFile(fsys systemd.Reader, p string) []systemd.EnvVar {
	b, err := fsys.ReadFile(p)
	if err != nil {
		return nil
	}
	vars, _, err := systemd.ParseEnvFile(bytes.NewReader(b), p)
	if err != nil {
		return nil
	}
	return vars
}

// DockerConfigOf locates and parses the daemon.json in effect: the
// --config-file of the unit's ExecStart (drop-ins and environment files
// applied), else /etc/docker/daemon.json. It also notes the daemon.json
// files of snap and rootless Docker, which this dockerd does not read.
func DockerConfigOf(env *checks.Env) *DockerConfig {
	return once(env, "docker.config", func(env *checks.Env) *DockerConfig {
		d := &DockerConfig{Path: DaemonJSON, Source: "default"}
		du := DockerUnitOf(env)
		if f, ok := du.Flag("config-file"); ok && f.HasValue && f.Value != "" {
			p := f.Value
			if !path.IsAbs(p) {
				p = path.Join("/", p) // systemd runs dockerd in /
			}
			d.Path, d.Source, d.ConfigFlag = p, "--config-file in "+f.Where(), &f
		}
		d.Target = d.Path
		if t, err := env.Host.FinalTarget(d.Path); err == nil {
			d.Target = t
		}
		b, err := env.Host.ReadFile(d.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			d.Exists, d.Err = true, err
		default:
			d.Exists = true
			d.File, d.Err = daemonjson.Parse(bytes.NewBuffer(b), d.Path)
			if d.Err != nil {
				d.File = nil
				break
			}
			d.Values = d.File.Values
			d.Remap, _, d.RemapErr = d.File.String("userns-remap")
		}
		if d.Path != DaemonJSON && env.Host.Exists(DaemonJSON) {
			d.Others = append(d.Others, OtherConfig{Path: DaemonJSON, Kind: "default"})
		}
		if env.Host.Exists(SnapDaemonJSON) {
			d.Others = append(d.Others, OtherConfig{Path: SnapDaemonJSON, Kind: "snap"})
		}
		homes, _ := env.Host.Glob("/home/*/.config/docker/daemon.json")
		if env.Host.Exists("/root/.config/docker/daemon.json") {
			homes = append([]string{"/root/.config/docker/daemon.json"}, homes...)
		}
		for _, h := range homes {
			if h != d.Path {
				d.Others = append(d.Others, OtherConfig{Path: h, Kind: "rootless"})
			}
		}
		return d
	})
}

// DockerRemapSetting is userns-remap as the host configures it now,
// whatever --user says.
type DockerRemapSetting struct {
	// Value is "" when remap is not configured.
	Value string
	// Where is "daemon.json /etc/docker/daemon.json line 3" or
	// "--userns-remap in FILE line N".
	Where string
	// Flag is set when the value comes from a dockerd flag.
	Flag *systemd.Flag
	// Err is why it cannot be told: daemon.json does not load, or its
	// value is not a string.
	Err error
}

// DockerRemapSettingOf reads userns-remap from daemon.json, else from the
// dockerd flags; Err is set when daemon.json does not load or its value is
// not a string.
func DockerRemapSettingOf(env *checks.Env) DockerRemapSetting {
	d := DockerConfigOf(env)
	switch {
	case d.Err != nil:
		return DockerRemapSetting{Err: d.Err}
	case d.RemapErr != nil:
		return DockerRemapSetting{Err: d.RemapErr}
	case d.File != nil && d.Remap != "":
		return DockerRemapSetting{Value: d.Remap, Where: "daemon.json " + d.File.Location("userns-remap")}
	}
	if f, ok := DockerUnitOf(env).Flag("userns-remap"); ok && f.Value != "" {
		return DockerRemapSetting{Value: f.Value, Where: "--userns-remap in " + f.Where(), Flag: &f}
	}
	return DockerRemapSetting{}
}

// DockerRemap is the remap account spec a run is about, and where it came
// from.
type DockerRemap struct {
	Spec remap.Spec
	// Source is "--user", "daemon.json /etc/docker/daemon.json line 3",
	// "--userns-remap in FILE line N" or "default".
	Source string
	// Err is a spec that does not parse, or a daemon.json that does not
	// load.
	Err error
}

// DockerRemapOf resolves the remap spec: --user (env.User), else
// daemon.json's userns-remap, else the --userns-remap flag of the unit,
// else "default".
func DockerRemapOf(env *checks.Env) DockerRemap {
	value, source := remap.DefaultSpec, "default"
	if env.User != "" {
		value, source = env.User, "--user"
	} else if set := DockerRemapSettingOf(env); set.Err != nil {
		return DockerRemap{Err: set.Err}
	} else if set.Value != "" {
		value, source = set.Value, set.Where
	}
	spec, err := remap.ParseSpec(value)
	return DockerRemap{Spec: spec, Source: source, Err: err}
}

// DockerDataRootOf is dockerd's data root before remapping: --data-root (or
// the old -g/--graph), else daemon.json "data-root" (or "graph"), else
// /var/lib/docker; source says which.
func DockerDataRootOf(env *checks.Env) (root, source string) {
	if f, ok := DockerUnitOf(env).Flag("data-root", "graph"); ok && f.Value != "" {
		return path.Clean(f.Value), "--" + f.Name + " in " + f.Where()
	}
	if d := DockerConfigOf(env); d.File != nil {
		for _, k := range []string{"data-root", "graph"} {
			if s, ok, err := d.File.String(k); ok && err == nil && s != "" {
				return path.Clean(s), "daemon.json " + d.File.Location(k)
			}
		}
	}
	return DefaultDataRoot, "default"
}

// RemappedRootOf is where dockerd keeps its data with remap on:
// <data-root>/<uid>.<gid>, uid and gid being the start of the account's
// first range in /etc/subuid and /etc/subgid. ok is false when the account
// has no range in either file yet.
func RemappedRootOf(env *checks.Env, root string, a remap.Account) (dir string, ok bool) {
	// The parsed files every subid check shares: parsing 100,000-line files
	// once matters. dockerd's own parser is lenient where this one is
	// strict; the two agree on every well-formed line, and subid.files
	// reports the rest.
	keys := a.SubIDKeys()
	first := func(f SubIDFile) (uint64, bool) {
		if f.File == nil {
			return 0, false
		}
		for _, l := range f.File.Ranges() {
			if slices.Contains(keys, l.Range.Owner) {
				return l.Range.Start, true
			}
		}
		return 0, false
	}
	s := SubIDsOf(env)
	uid, okU := first(s.UID)
	gid, okG := first(s.GID)
	if !okU || !okG {
		return "", false
	}
	return path.Join(root, fmt.Sprintf("%d.%d", uid, gid)), true
}
