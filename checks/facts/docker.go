package facts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/user"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/config/daemonjson"
	"github.com/usernsctl/usernsctl/config/nsswitch"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/config/systemd"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/rules"
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
	// Syntax is how the installed dockerd reads the file (Whole from
	// rules.DockerDaemonJSONDecode on, FirstValue before); SyntaxAssumed
	// is set when dockerd's version is unknown and Whole was assumed.
	Syntax        daemonjson.Syntax
	SyntaxAssumed bool
	// Remap is the raw "userns-remap" value, "" when unset.
	Remap string
	// RemapNull is set when "userns-remap" is null: dockerd reads that as
	// unset (remap off), without a word.
	RemapNull bool

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
		d.Syntax, d.SyntaxAssumed = DockerSyntax(dockerd(env))
		b, err := env.Host.ReadFile(d.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			d.Exists, d.Err = true, err
		default:
			d.Exists = true
			d.File, d.Err = daemonjson.ParseAs(bytes.NewBuffer(b), d.Path, d.Syntax)
			if d.Err != nil {
				d.File = nil
				break
			}
			d.Values = d.File.Values
			if v, ok := d.Values["userns-remap"]; ok && v == nil {
				d.RemapNull = true // json.Unmarshal leaves the string empty
				break
			}
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

// dockerd is the installed dockerd's version, for the facts that load
// without a context: the version is read once per run whoever asks first,
// and a `dockerd --version` needs no cancellation.
func dockerd(env *checks.Env) Program {
	return VersionOf(context.Background(), env, versions.Dockerd)
}

// DockerdAtLeast reports whether the installed dockerd is at least the
// rule's version; known is false when its version is unknown, and at is
// then true: usernsctl assumes a current dockerd and says so.
func DockerdAtLeast(env *checks.Env, t rules.Threshold) (at, known bool) {
	p := dockerd(env)
	if !p.Known() {
		return true, false
	}
	return p.Version.AtLeast(t.Value), true
}

// DockerSyntax is how dockerd release p reads daemon.json; assumed is set
// when p's version is unknown (the current syntax is assumed).
func DockerSyntax(p Program) (syn daemonjson.Syntax, assumed bool) {
	if !p.Known() {
		return daemonjson.Whole, true
	}
	if p.Version.AtLeast(rules.DockerDaemonJSONDecode.Value) {
		return daemonjson.Whole, false
	}
	return daemonjson.FirstValue, false
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
	// Null is where daemon.json sets "userns-remap": null, which dockerd
	// reads as unset ("" when it does not).
	Null string
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
	null := ""
	if d.RemapNull {
		null = "daemon.json " + d.File.Location("userns-remap")
	}
	if f, ok := DockerUnitOf(env).Flag("userns-remap"); ok && f.Value != "" {
		return DockerRemapSetting{Value: f.Value, Where: "--userns-remap in " + f.Where(), Flag: &f, Null: null}
	}
	return DockerRemapSetting{Null: null}
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

// DockerDataRootOf is dockerd's data root before remapping, as configured:
// --data-root (or the old -g/--graph), else daemon.json "data-root" (or
// "graph"), else /var/lib/docker; source says which. "graph" and --graph
// count only before rules.DockerGraphRefused: later releases refuse them
// (docker.daemon_json says so).
func DockerDataRootOf(env *checks.Env) (root, source string) {
	names := []string{"data-root", "graph"}
	if refused, _ := DockerdAtLeast(env, rules.DockerGraphRefused); refused {
		names = names[:1]
	}
	if f, ok := DockerUnitOf(env).Flag(names...); ok && f.Value != "" {
		return path.Clean(f.Value), "--" + f.Name + " in " + f.Where()
	}
	if d := DockerConfigOf(env); d.File != nil {
		for _, k := range names {
			if s, ok, err := d.File.String(k); ok && err == nil && s != "" {
				return path.Clean(s), "daemon.json " + d.File.Location(k)
			}
		}
	}
	return DefaultDataRoot, "default"
}

// DockerDataRoot is the data root as dockerd uses it: the configured path
// with every symbolic link resolved when it exists (moby daemon.go
// CreateDaemonRoot, fileutils.ReadSymlinkedDirectory), as configured when
// it does not exist yet (dockerd then creates it).
type DockerDataRoot struct {
	// Configured and Source are DockerDataRootOf's answer.
	Configured, Source string
	// Real is the path dockerd works under.
	Real string
	// Exists says the data root exists.
	Exists bool
	// Err is a data root that exists but does not resolve to a directory:
	// dockerd refuses to start (`Unable to get the full path to root`).
	Err error
}

// DockerDataRootRealOf resolves the data root once per run, through the
// host seam (links in a snapshot tree resolve inside it).
func DockerDataRootRealOf(env *checks.Env) *DockerDataRoot {
	return once(env, "docker.dataroot", func(env *checks.Env) *DockerDataRoot {
		root, src := DockerDataRootOf(env)
		d := &DockerDataRoot{Configured: root, Source: src, Real: root}
		fi, err := env.Host.Stat(root)
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			return d
		case err != nil:
			d.Exists, d.Err = true, err
			return d
		}
		d.Exists = true
		real, err := realPath(env, root)
		if err != nil {
			d.Err = err
			return d
		}
		d.Real = real
		if !fi.IsDir() {
			d.Err = fmt.Errorf("%s is not a directory", real)
		}
		return d
	})
}

// realPath is filepath.EvalSymlinks through the host seam: every
// component's links followed, relative targets against their directory.
func realPath(env *checks.Env, p string) (string, error) {
	todo := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
	done := "/"
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, c)
		fi, err := env.Host.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if links++; links > 255 {
			return "", &fs.PathError{Op: "lstat", Path: p, Err: syscall.ELOOP}
		}
		t, err := env.Host.Readlink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(t) {
			done = "/"
		}
		todo = append(strings.Split(strings.TrimPrefix(t, "/"), "/"), todo...)
	}
	return done, nil
}

// RemappedRootOf is where dockerd keeps its data with remap on:
// <data-root>/<uid>.<gid>, uid and gid being the host ids of container
// root: the start of the first range dockerd maps from /etc/subuid and
// /etc/subgid (DockerSubIDLines: the order depends on the release). ok is
// false when the account has no range in either file yet.
func RemappedRootOf(env *checks.Env, root string, a remap.Account) (dir string, ok bool) {
	s := SubIDsOf(env)
	u := DockerSubIDLines(env, s.UID.File, a)
	g := DockerSubIDLines(env, s.GID.File, a)
	if len(u) == 0 || len(g) == 0 {
		return "", false
	}
	return path.Join(root, remap.RemappedDir(int(u[0].Range.Start), int(g[0].Range.Start))), true
}

// DockerSubIDLines are the lines of one ID file that the installed dockerd
// maps for account a, in the order it joins them (container id 0 is the
// first line's start). From rules.DockerUsergroup on (and when the version
// is unknown): every line owned by the user's name or its uid, in file
// order. Before: the lines owned by the uid, and the name's only when the
// uid has none (moby pkg/idtools lookupSubUIDRanges). A user named by a
// uid no account has is matched by the uid alone.
//
// The parsed files every subid check shares are used (parsing
// 100,000-line files once matters). dockerd's own parser is lenient where
// this one is strict; the two agree on every well-formed line, and
// subid.files reports the rest.
func DockerSubIDLines(env *checks.Env, f *subid.File, a remap.Account) []*subid.Line {
	if f == nil {
		return nil
	}
	uid := ""
	if a.UID >= 0 {
		uid = strconv.Itoa(a.UID)
	}
	var byUID, byName, both []*subid.Line
	for _, l := range f.Ranges() {
		switch o := l.Range.Owner; {
		case uid != "" && o == uid:
			byUID = append(byUID, l)
			both = append(both, l)
		case a.User != "" && o == a.User:
			byName = append(byName, l)
			both = append(both, l)
		}
	}
	if fileOrder, _ := DockerdAtLeast(env, rules.DockerUsergroup); fileOrder {
		return both
	}
	if len(byUID) > 0 {
		return byUID
	}
	return byName
}

// NSSDatabase is one NSS database line of /etc/nsswitch.conf ("passwd:
// files sss"); a missing file or line is the local files.
type NSSDatabase struct {
	nsswitch.Database
	Err error
}

// NSSDatabaseOf reads database db of /etc/nsswitch.conf once per run.
func NSSDatabaseOf(env *checks.Env, db string) *NSSDatabase {
	return once(env, "nss.db."+db, func(env *checks.Env) *NSSDatabase {
		data, err := env.Host.ReadFile(NSSwitchFile)
		if errors.Is(err, fs.ErrNotExist) {
			return &NSSDatabase{Database: nsswitch.Database{Name: db}}
		}
		if err != nil {
			return &NSSDatabase{Database: nsswitch.Database{Name: db}, Err: err}
		}
		d, err := nsswitch.ParseDatabase(bytes.NewReader(data), NSSwitchFile, db)
		return &NSSDatabase{Database: d, Err: err}
	})
}

// Where is "/etc/nsswitch.conf line 3 (passwd: files sss)".
func (d *NSSDatabase) Where() string {
	return fmt.Sprintf("%s line %d (%s)", NSSwitchFile, d.Line, d.String())
}

// NSSLookup is one `getent DB KEY` dockerd would run because the account
// is not in the local file and nsswitch.conf names other sources.
type NSSLookup struct {
	DB, Key string
	// Source is the nsswitch.conf line that names the other sources.
	Source *NSSDatabase
	// Found is set when getent printed an entry; Entry is that line.
	Found bool
	Entry string
	// Err is set when getent's answer is not known: not installed (or not
	// recorded in a snapshot), or it failed otherwise. A getent that ran
	// and found nothing (exit 2) is Found false with no Err.
	Err error
}

// Command is the command line ("getent passwd mapuser").
func (l NSSLookup) Command() string { return "getent " + l.DB + " " + l.Key }

// DockerAccount is the remap account as dockerd resolves it at start:
// /etc/passwd and /etc/group first, then, where nsswitch.conf names other
// sources for passwd or group, `getent` (moby internal/usergroup
// LookupUser/LookupUID/LookupGroup/LookupGID, pkg/idtools before 28.0).
type DockerAccount struct {
	// Remap is the spec and where it came from.
	Remap DockerRemap
	// Account is what the spec resolves to; valid when Err is nil or
	// remap.ErrRoot.
	Account remap.Account
	// Err is the spec's or daemon.json's error (Remap.Err), unreadable
	// account files, or remap.ErrRoot for a spec that resolves to the user
	// named root.
	Err error
	// NSS are the getent lookups made.
	NSS []NSSLookup
}

// Unknown returns the lookups whose answer is not known.
func (d *DockerAccount) Unknown() []NSSLookup {
	var out []NSSLookup
	for _, l := range d.NSS {
		if l.Err != nil {
			out = append(out, l)
		}
	}
	return out
}

// DockerAccountOf resolves the remap account once per run.
func DockerAccountOf(ctx context.Context, env *checks.Env) *DockerAccount {
	return once(env, "docker.account", func(env *checks.Env) *DockerAccount {
		d := &DockerAccount{Remap: DockerRemapOf(env)}
		if d.Remap.Err != nil {
			d.Err = d.Remap.Err
			return d
		}
		acc := AccountsOf(env)
		if acc.Err != nil {
			d.Err = acc.Err
			return d
		}
		spec := d.Remap.Spec
		users, groups := acc.Users, acc.Groups
		d.Account, d.Err = spec.Resolve(users, groups)
		if !d.Account.Exists {
			key := spec.User
			if spec.UID >= 0 {
				key = strconv.Itoa(spec.UID)
			}
			if l, ok := nssLookup(ctx, env, "passwd", key); ok {
				d.NSS = append(d.NSS, l)
				if l.Found {
					if us, err := user.ParsePasswd(strings.NewReader(l.Entry)); err == nil && len(us) > 0 {
						users = append(slices.Clip(users), us[0])
						d.Account, d.Err = spec.Resolve(users, groups)
					}
				}
			}
		}
		if d.Account.Exists && !d.Account.GroupExists {
			key := spec.Group
			switch {
			case spec.GID >= 0:
				key = strconv.Itoa(spec.GID)
			case key != "":
			case spec.UID >= 0:
				key = strconv.Itoa(spec.UID)
			default:
				key = spec.User
			}
			if l, ok := nssLookup(ctx, env, "group", key); ok {
				d.NSS = append(d.NSS, l)
				if l.Found {
					if gs, err := user.ParseGroup(strings.NewReader(l.Entry)); err == nil && len(gs) > 0 {
						groups = append(slices.Clip(groups), gs[0])
						d.Account, d.Err = spec.Resolve(users, groups)
					}
				}
			}
		}
		return d
	})
}

// nssLookup runs `getent DB KEY` when nsswitch.conf names a source other
// than the files for DB; ok is false when it names only the files.
func nssLookup(ctx context.Context, env *checks.Env, db, key string) (NSSLookup, bool) {
	src := NSSDatabaseOf(env, db)
	if src.Err != nil || src.FilesOnly() {
		return NSSLookup{}, false
	}
	l := NSSLookup{DB: db, Key: key, Source: src}
	out, err := env.Run.Run(ctx, "getent", db, key)
	var re *run.Error
	switch {
	case err == nil:
		l.Entry = strings.TrimSpace(string(out.Stdout))
		l.Found = l.Entry != ""
	case errors.As(err, &re) && re.Output.Exit == 2:
		// getent: "Key not found in database"
	default:
		l.Err = err
	}
	return l, true
}

// DockerdPath is the PATH dockerd runs with: systemd's default for
// services, then the classic /sbin and /bin (init scripts, split /usr).
var DockerdPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Tool is a program dockerd would find on DockerdPath.
type Tool struct {
	Name string
	// Path is where exec.LookPath finds it; "" when not found.
	Path string
	// Resolved is Path with its links followed (moby resolveBinary takes
	// adduser and useradd only when the file is named so).
	Resolved string
}

// Found reports whether the program is on the path.
func (t Tool) Found() bool { return t.Path != "" }

// Is reports whether the program found resolves to a file of its own name.
func (t Tool) Is() bool { return t.Found() && path.Base(t.Resolved) == t.Name }

// DockerdToolOf finds name on DockerdPath as exec.LookPath does: the first
// regular file with an execute bit.
func DockerdToolOf(env *checks.Env, name string) Tool {
	t := Tool{Name: name}
	for _, d := range DockerdPath {
		p := path.Join(d, name)
		fi, err := env.Host.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		t.Path, t.Resolved = p, p
		if r, err := realPath(env, p); err == nil {
			t.Resolved = r
		}
		return t
	}
	return t
}

// DockerdPathKnown reports whether the host shows where the account tools
// live: /usr/sbin or /sbin exists. Every directory of DockerdPath is
// looked at, so a snapshot keeps them all; a hand-made tree (or an older
// snapshot) without them cannot tell which programs dockerd would find.
func DockerdPathKnown(env *checks.Env) bool {
	known := false
	for _, d := range DockerdPath {
		if fi, err := env.Host.Stat(d); err == nil && fi.IsDir() && (d == "/usr/sbin" || d == "/sbin") {
			known = true
		}
	}
	return known
}

// NSSUserOf asks `getent passwd KEY` as dockerd would for an account
// missing from /etc/passwd, when nsswitch.conf names other sources; ok is
// set when it printed an entry.
func NSSUserOf(ctx context.Context, env *checks.Env, key string) (user.User, bool) {
	l, asked := nssLookup(ctx, env, "passwd", key)
	if !asked || !l.Found {
		return user.User{}, false
	}
	us, err := user.ParsePasswd(strings.NewReader(l.Entry))
	if err != nil || len(us) == 0 {
		return user.User{}, false
	}
	return us[0], true
}

// NSSGroupOf is NSSUserOf for `getent group KEY`.
func NSSGroupOf(ctx context.Context, env *checks.Env, key string) (user.Group, bool) {
	l, asked := nssLookup(ctx, env, "group", key)
	if !asked || !l.Found {
		return user.Group{}, false
	}
	gs, err := user.ParseGroup(strings.NewReader(l.Entry))
	if err != nil || len(gs) == 0 {
		return user.Group{}, false
	}
	return gs[0], true
}
