package systemd

import (
	"bytes"
	"errors"
	"io/fs"
	"path"
	"sort"
)

// Reader is the read side of the host seam (*host.Host): host paths in,
// host paths out.
type Reader interface {
	ReadFile(p string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

// UnitDirs are the directories systemd's system manager loads units from,
// highest priority first (systemd.unit(5), without the transient and
// generator directories that only exist at run time).
var UnitDirs = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
}

// ErrNotFound means no unit file of that name exists in UnitDirs.
var ErrNotFound = errors.New("unit file not found")

// Unit is a unit file with its drop-ins, in the order systemd applies them.
type Unit struct {
	Name string
	// Path is the unit file in effect: the first found in UnitDirs.
	Path string
	// DropIns are NAME.d/*.conf from every UnitDirs entry, one per file
	// name (a higher-priority directory hides a lower one's file of the
	// same name), sorted by file name.
	DropIns []string
	// Files are the parsed unit file and drop-ins, in that order.
	Files []*File
	// Searched lists the unit file paths looked at, for messages.
	Searched []string
	// Masked is set when the unit file is empty or a link to /dev/null:
	// systemd will not start the unit at all.
	Masked bool
}

// Load finds unit name ("docker.service") on a host and parses it with its
// drop-ins. It returns ErrNotFound when no unit file exists, and a parse
// error for a file systemd could not read. A unit file that is empty or a
// symlink to /dev/null (masked) loads with no entries.
func Load(r Reader, name string) (*Unit, error) {
	u := &Unit{Name: name}
	for _, dir := range UnitDirs {
		p := path.Join(dir, name)
		u.Searched = append(u.Searched, p)
		b, err := r.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		f, err := Parse(bytes.NewReader(b), p)
		if err != nil {
			return nil, err
		}
		u.Path, u.Masked = p, len(b) == 0
		u.Files = append(u.Files, f)
		break
	}
	if u.Path == "" {
		return nil, ErrNotFound
	}

	seen := map[string]string{}
	for _, dir := range UnitDirs {
		matches, err := r.Glob(path.Join(dir, name+".d", "*.conf"))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			if _, ok := seen[path.Base(m)]; !ok {
				seen[path.Base(m)] = m
			}
		}
	}
	bases := make([]string, 0, len(seen))
	for b := range seen {
		bases = append(bases, b)
	}
	sort.Strings(bases)
	for _, b := range bases {
		p := seen[b]
		data, err := r.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := Parse(bytes.NewReader(data), p)
		if err != nil {
			return nil, err
		}
		u.DropIns = append(u.DropIns, p)
		u.Files = append(u.Files, f)
	}
	return u, nil
}

// All returns every assignment of section/key in the order systemd applies
// them, after list semantics: an empty assignment ("ExecStart=") drops
// everything assigned before it.
func (u *Unit) All(section, key string) []Entry {
	var out []Entry
	for _, f := range u.Files {
		for _, e := range f.Entries {
			if e.Section != section || e.Key != key {
				continue
			}
			if e.Value == "" {
				out = nil
				continue
			}
			out = append(out, e)
		}
	}
	return out
}

// Problems returns what systemd would log about the unit's files.
func (u *Unit) Problems() []Problem {
	var out []Problem
	for _, f := range u.Files {
		out = append(out, f.Problems...)
	}
	return out
}
