// Package host is the one seam between usernsctl and the machine's files.
//
// Every path the tool reads or writes is a host path ("/etc/subuid") that is
// resolved under a root directory: "/" on a live host, a snapshot tree in
// tests and in `--root` mode. Nothing else in the tool calls os.Open on a
// host path.
package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// MaxFileSize bounds every read through the seam: the files usernsctl reads
// are small, and a runaway file must not exhaust memory.
const MaxFileSize = 32 << 20

// ErrTooLarge is returned for a file larger than MaxFileSize.
var ErrTooLarge = errors.New("file too large")

// Host resolves host paths under a root directory.
type Host struct {
	root string // cleaned absolute directory; "/" for the live host
	// tree resolves every lookup under a snapshot root as if it were "/"
	// (see tree.go). nil for the live host.
	tree *tree
	// meta is the tree's recorded modes and owners (StatFile), by host
	// path; nil for the live host.
	meta map[string]Meta

	mu   sync.Mutex
	seen map[string]Access // host paths used, when recording (see Record)
}

// Access is how a host path was used, so a snapshot can reproduce it: a
// read needs the bytes, a stat only the file's kind, mode and attributes, a
// listing only the directory.
type Access int

// Accesses, weakest first; a path keeps the strongest.
const (
	Stat Access = iota + 1
	List
	Read
)

// Live returns the seam for the machine usernsctl runs on.
func Live() *Host { return &Host{root: "/"} }

// At returns the seam for a snapshot tree at dir. An empty dir or "/" means
// the live host.
func At(dir string) (*Host, error) {
	if dir == "" || dir == "/" {
		return Live(), nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("--root %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("--root %s: not a directory", dir)
	}
	tree, err := openTree(abs)
	if err != nil {
		return nil, fmt.Errorf("--root %s: %w", dir, err)
	}
	meta, err := tree.loadMeta()
	if err != nil {
		return nil, fmt.Errorf("--root %s: %w", dir, err)
	}
	return &Host{root: abs, tree: tree, meta: meta}, nil
}

// rel is p relative to the root, for the confined lookups.
func rel(p string) string {
	c := path.Clean("/" + p)
	if c == "/" {
		return "."
	}
	return c[1:]
}

// Live reports whether this seam is the running machine (root "/").
func (h *Host) Live() bool { return h.root == "/" }

// Root is the directory host paths are resolved under.
func (h *Host) Root() string { return h.root }

// Path maps a host path to the path usernsctl opens. Host paths are always
// absolute; ".." cannot climb out of the root.
func (h *Host) Path(p string) string {
	clean := path.Clean("/" + p)
	if h.root == "/" {
		return clean
	}
	return filepath.Join(h.root, clean)
}

// Record starts remembering every host path read through the seam, so that
// `usernsctl snapshot` can copy exactly the files a check used.
func (h *Host) Record() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]Access{}
	}
}

// Recorded returns the host paths used since Record, with how each was
// used.
func (h *Host) Recorded() map[string]Access {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]Access, len(h.seen))
	for p, a := range h.seen {
		out[p] = a
	}
	return out
}

// Note records a use of p; area code that reads host metadata by other
// means (xattrs) calls it so snapshots stay complete.
func (h *Host) Note(p string, a Access) {
	h.mu.Lock()
	if h.seen != nil {
		k := path.Clean("/" + p)
		if a > h.seen[k] {
			h.seen[k] = a
		}
	}
	h.mu.Unlock()
}

// Open opens a host file for reading.
func (h *Host) Open(p string) (*os.File, error) {
	h.Note(p, Read)
	if h.tree != nil {
		f, err := h.tree.open(rel(p))
		return f, hostErr(p, err)
	}
	return os.Open(h.Path(p))
}

// OpenMetadata opens a host file to read only what a program records about
// itself (a Go binary's build info). A snapshot keeps a stand-in with the
// file's mode and attributes, not its bytes: the recorded `--version`
// output answers there instead.
func (h *Host) OpenMetadata(p string) (*os.File, error) {
	h.Note(p, Stat)
	if h.tree != nil {
		f, err := h.tree.open(rel(p))
		return f, hostErr(p, err)
	}
	return os.Open(h.Path(p))
}

// ReadFile reads a whole host file, refusing directories and anything
// larger than MaxFileSize. Errors name the host path, not the root-prefixed
// one, so messages read the same in snapshot mode.
func (h *Host) ReadFile(p string) ([]byte, error) {
	f, err := h.Open(p)
	if err != nil {
		return nil, hostErr(p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("is a directory, expected a file")}
	}
	var buf bytes.Buffer
	// Size the buffer once from the file's size (procfs reports 0: the
	// buffer then grows as it reads).
	if err == nil && fi.Size() > 0 && fi.Size() <= MaxFileSize {
		buf.Grow(int(fi.Size()) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, hostErr(p, err)
	}
	if n > MaxFileSize {
		return nil, &fs.PathError{Op: "read", Path: p, Err: ErrTooLarge}
	}
	return buf.Bytes(), nil
}

// Exists reports whether a host path exists (following symlinks).
func (h *Host) Exists(p string) bool {
	_, err := h.Stat(p)
	return err == nil
}

// Stat stats a host path, following symlinks. In a snapshot tree the
// mode and owner recorded in StatFile win over the tree's own.
func (h *Host) Stat(p string) (fs.FileInfo, error) {
	h.Note(p, Stat)
	if h.tree != nil {
		fi, err := h.tree.stat(rel(p), true)
		if err != nil {
			return nil, hostErr(p, err)
		}
		return h.withMeta(p, fi), nil
	}
	fi, err := os.Stat(h.Path(p))
	return fi, hostErr(p, err)
}

// Lstat stats a host path without following a final symlink.
func (h *Host) Lstat(p string) (fs.FileInfo, error) {
	h.Note(p, Stat)
	if h.tree != nil {
		fi, err := h.tree.stat(rel(p), false)
		if err != nil {
			return nil, hostErr(p, err)
		}
		return h.withMeta(p, fi), nil
	}
	fi, err := os.Lstat(h.Path(p))
	return fi, hostErr(p, err)
}

// ReadDir lists a host directory, sorted by name.
func (h *Host) ReadDir(p string) ([]fs.DirEntry, error) {
	h.Note(p, List)
	if h.tree != nil {
		ents, err := fs.ReadDir(treeFS{h.tree}, rel(p))
		return ents, hostErr(p, err)
	}
	ents, err := os.ReadDir(h.Path(p))
	return ents, hostErr(p, err)
}

// Glob expands a host path pattern and returns host paths, sorted.
func (h *Host) Glob(pattern string) ([]string, error) {
	if h.tree != nil {
		matches, err := fs.Glob(treeFS{h.tree}, rel(pattern))
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(matches))
		for _, m := range matches {
			hp := "/" + m
			h.Note(hp, Stat)
			out = append(out, hp)
		}
		sort.Strings(out)
		return out, nil
	}
	matches, err := filepath.Glob(h.Path(pattern))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		hp := h.Unpath(m)
		h.Note(hp, Stat)
		out = append(out, hp)
	}
	sort.Strings(out)
	return out, nil
}

// Unpath maps a path under the root back to its host path.
func (h *Host) Unpath(real string) string {
	if h.root == "/" {
		return real
	}
	rel, err := filepath.Rel(h.root, real)
	if err != nil || strings.HasPrefix(rel, "..") {
		return real
	}
	return "/" + filepath.ToSlash(rel)
}

// hostErr rewrites a *fs.PathError so it names the host path.
func hostErr(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: p, Err: pe.Err}
	}
	return err
}

// WriteSetting writes value over an existing kernel setting file
// (/proc/sys/..., /sys/module/.../parameters/...) in place. Such files
// cannot be replaced by a rename, so they are the one write that does not
// go through internal/txn; in a snapshot tree the path resolves inside the
// tree like every read. The file must exist: a setting is never created.
func (h *Host) WriteSetting(p string, value []byte) error {
	var f *os.File
	var err error
	if h.tree != nil {
		f, err = h.tree.openWrite(rel(p))
	} else {
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	}
	if err != nil {
		return hostErr(p, err)
	}
	_, werr := f.Write(value)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return &fs.PathError{Op: "write", Path: p, Err: werr}
	}
	return nil
}
