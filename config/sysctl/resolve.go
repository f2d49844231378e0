package sysctl

import (
	"path"
	"sort"
	"strings"
)

// Dirs are the sysctl.d directories in precedence order: a file name in an
// earlier directory masks the same name in the later ones.
var Dirs = []string{
	"/etc/sysctl.d",
	"/run/sysctl.d",
	"/usr/local/lib/sysctl.d",
	"/usr/lib/sysctl.d",
	"/lib/sysctl.d",
}

// Conf is /etc/sysctl.conf, applied after every sysctl.d file (`sysctl
// --system`), so its assignments win.
const Conf = "/etc/sysctl.conf"

// Order returns the files the boot applies, in order: the "*.conf" files
// of Dirs sorted by file name across all directories, each name taken from
// the first directory that has it, then Conf when confExists. names maps a
// directory to the names of the regular files (or links to them) in it;
// hidden files and other suffixes are ignored here.
func Order(names map[string][]string, confExists bool) []string {
	byBase := map[string]string{}
	for _, dir := range Dirs {
		for _, n := range names[dir] {
			if !strings.HasSuffix(n, ".conf") || strings.HasPrefix(n, ".") || strings.Contains(n, "/") {
				continue
			}
			if _, masked := byBase[n]; !masked {
				byBase[n] = path.Join(dir, n)
			}
		}
	}
	bases := make([]string, 0, len(byBase))
	for b := range byBase {
		bases = append(bases, b)
	}
	sort.Strings(bases)
	out := make([]string, 0, len(bases)+1)
	for _, b := range bases {
		out = append(out, byBase[b])
	}
	if confExists {
		out = append(out, Conf)
	}
	return out
}

// AppliedAfter reports whether a file at path a is applied after one at
// path b in the order Order produces. Conf comes last; two files with the
// same name are one slot (one masks the other), so neither is after.
func AppliedAfter(a, b string) bool {
	switch {
	case a == b:
		return false
	case a == Conf:
		return true
	case b == Conf:
		return false
	}
	return path.Base(a) > path.Base(b)
}

// Set is the files of one boot, in the order they are applied.
type Set struct {
	Files []*File
}

// Result is what the files say about one key.
type Result struct {
	Key string
	// Final is the assignment the boot leaves in effect, nil when no file
	// sets the key (the kernel default stays) or a "-key" line cancels it.
	Final *Entry
	// Mentions lists every line about the key, in the order applied:
	// assignments, matching globs and exclusions.
	Mentions []Entry
}

// Lookup resolves key the way systemd-sysctl does: the last explicit line
// for the key wins, and a "-key" line without a value cancels the
// assignments before it and shields the key from globs; without an
// explicit line, the last matching glob assignment wins.
func (s *Set) Lookup(key string) Result {
	key = Normalize(key)
	r := Result{Key: key}
	var explicit, glob *Entry
	for _, f := range s.Files {
		for i := range f.Entries {
			e := &f.Entries[i]
			if !e.matches(key) {
				continue
			}
			r.Mentions = append(r.Mentions, *e)
			switch {
			case !e.Glob:
				explicit = e
			case e.HasValue:
				glob = e
			}
		}
	}
	switch {
	case explicit != nil && explicit.HasValue:
		final := *explicit
		r.Final = &final
	case explicit == nil && glob != nil:
		final := *glob
		r.Final = &final
	}
	return r
}
