package facts

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/config/logindefs"
	"github.com/usernsctl/usernsctl/config/nsswitch"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/run"
)

// Paths of the subordinate id configuration.
const (
	SubUIDFile    = "/etc/subuid"
	SubGIDFile    = "/etc/subgid"
	LoginDefsFile = "/etc/login.defs"
	NSSwitchFile  = "/etc/nsswitch.conf"
	// VendorLoginDefs is where openSUSE (shadow built with libeconf) keeps
	// login.defs when /etc has none.
	VendorLoginDefs = "/usr/etc/login.defs"
)

// SubIDFile is one of /etc/subuid and /etc/subgid.
type SubIDFile struct {
	Path string
	// Exists is false when the file is missing: that is a fact about the
	// host, not an error.
	Exists bool
	// File is the parsed file; nil when missing or unreadable.
	File *subid.File
	// Err is why an existing path could not be read (a directory, too
	// large, permission denied).
	Err error
}

// SubIDs are both files.
type SubIDs struct {
	UID, GID SubIDFile
}

// Files lists the parsed files (skipping missing or unreadable ones).
func (s *SubIDs) Files() []*subid.File {
	var out []*subid.File
	for _, f := range []SubIDFile{s.UID, s.GID} {
		if f.File != nil {
			out = append(out, f.File)
		}
	}
	return out
}

// SubIDsOf reads and parses /etc/subuid and /etc/subgid once per run.
func SubIDsOf(env *checks.Env) *SubIDs {
	return once(env, "subid.files", func(env *checks.Env) *SubIDs {
		// On a host with 100,000 ranges each parse is tens of
		// milliseconds, most of it touching fresh memory: identical files
		// (the usual case: useradd writes both) are parsed once, different
		// ones at the same time.
		uid, uerr := env.Host.ReadFile(SubUIDFile)
		gid, gerr := env.Host.ReadFile(SubGIDFile)
		var s SubIDs
		if uerr == nil && gerr == nil && len(uid) > 0 && bytes.Equal(uid, gid) {
			s.UID = parseSubID(SubUIDFile, uid, nil)
			if s.UID.File != nil {
				if a := s.UID.File.Alias(SubGIDFile); a != nil {
					s.GID = SubIDFile{Path: SubGIDFile, Exists: true, File: a}
					return &s
				}
			}
		}
		done := make(chan struct{})
		go func() { s.GID = parseSubID(SubGIDFile, gid, gerr); close(done) }()
		s.UID = parseSubID(SubUIDFile, uid, uerr)
		<-done
		return &s
	})
}

func parseSubID(path string, data []byte, err error) SubIDFile {
	f := SubIDFile{Path: path}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return f
	case err != nil:
		f.Exists, f.Err = true, err
		return f
	}
	f.Exists = true
	f.File, f.Err = subid.Parse(bytes.NewBuffer(data), path)
	return f
}

// LoginDefs is login.defs as far as usernsctl reads it.
type LoginDefs struct {
	// Defs always holds usable values (shadow's defaults where the file is
	// missing or a value is bad).
	Defs *logindefs.Defs
	// Path is the file read; "" when none exists.
	Path string
	// Err lists settings that do not parse (file:line:column each), or why
	// the file could not be read.
	Err error
}

// LoginDefsOf reads /etc/login.defs (or openSUSE's /usr/etc/login.defs)
// once per run.
func LoginDefsOf(env *checks.Env) *LoginDefs {
	return once(env, "subid.logindefs", func(env *checks.Env) *LoginDefs {
		for _, p := range []string{LoginDefsFile, VendorLoginDefs} {
			data, err := env.Host.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return &LoginDefs{Defs: logindefs.Defaults(), Path: p, Err: err}
			}
			d, err := logindefs.Parse(bytes.NewReader(data), p)
			if d == nil {
				d = logindefs.Defaults()
			}
			return &LoginDefs{Defs: d, Path: p, Err: err}
		}
		return &LoginDefs{Defs: logindefs.Defaults()}
	})
}

// NSSwitch is the `subid:` source of /etc/nsswitch.conf.
type NSSwitch struct {
	Subid  nsswitch.Subid
	Exists bool
	Err    error
}

// NSSwitchOf reads /etc/nsswitch.conf once per run. A missing file means
// files, as libsubid reads it.
func NSSwitchOf(env *checks.Env) *NSSwitch {
	return once(env, "subid.nsswitch", func(env *checks.Env) *NSSwitch {
		data, err := env.Host.ReadFile(NSSwitchFile)
		if errors.Is(err, fs.ErrNotExist) {
			return &NSSwitch{}
		}
		if err != nil {
			return &NSSwitch{Exists: true, Err: err}
		}
		s, err := nsswitch.ParseSubid(bytes.NewReader(data), NSSwitchFile)
		return &NSSwitch{Subid: s, Exists: true, Err: err}
	})
}

// Getsubids is what `getsubids [-g] USER` answered.
type Getsubids struct {
	// Command is the command line run ("getsubids -g kubelet").
	Command string
	// Installed is false when getsubids is not on the host.
	Installed bool
	// Ranges are the ranges printed; empty when NoRanges.
	Ranges []subid.Range
	// Output is what it printed (stdout, else stderr), trimmed.
	Output string
	// NoRanges is getsubids' "Error fetching ranges" (exit 1): the user has
	// none in the source nsswitch.conf names.
	NoRanges bool
	// Err is any other failure, or output that does not parse.
	Err error
}

// GetsubidsOf runs `getsubids USER` (gids: `getsubids -g USER`) once per
// run, through env.Run.
func GetsubidsOf(ctx context.Context, env *checks.Env, user string, gids bool) *Getsubids {
	argv := []string{"getsubids", user}
	if gids {
		argv = []string{"getsubids", "-g", user}
	}
	line := run.Line(argv)
	return once(env, "subid.getsubids:"+line, func(env *checks.Env) *Getsubids {
		g := &Getsubids{Command: line, Installed: true}
		out, err := env.Run.Run(ctx, argv...)
		g.Output = strings.TrimSpace(string(out.Stdout))
		if g.Output == "" {
			g.Output = strings.TrimSpace(string(out.Stderr))
		}
		var rerr *run.Error
		switch {
		case run.IsNotFound(err):
			g.Installed = false
			return g
		case errors.As(err, &rerr) && out.Exit == 1 && strings.Contains(g.Output, "Error fetching ranges"):
			g.NoRanges = true
			return g
		case err != nil:
			g.Err = err
			return g
		}
		g.Ranges, g.Err = subid.ParseGetsubids(bytes.NewReader(out.Stdout), line)
		return g
	})
}
