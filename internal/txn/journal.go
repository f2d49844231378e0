package txn

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/inroot"
)

// Journal layout under the state directory:
//
//	lock                    usernsctl's flock
//	backups/<id>/           one entry per apply (or revert) that changed files
//	    manifest.json       written before any target is touched
//	    0-subuid, 1-...     exact previous bytes of each changed file
//	reverted/<id>/          entries already undone, kept for the record
//
// An entry directory without manifest.json never had a target touched
// (the process died while saving backups): it is deleted. A manifest in
// state "pending" means the process died while replacing targets: each is
// old or new, and the entry is rolled back. "committed" entries of kind
// apply are what revert undoes.
const (
	schema       = "usernsctl.journal/v1"
	backupsDir   = "backups"
	revertedDir  = "reverted"
	manifestName = "manifest.json"
	lockName     = "lock"

	statePending   = "pending"
	stateCommitted = "committed"

	kindApply  = "apply"
	kindRevert = "revert"
)

type manifest struct {
	Schema  string    `json:"schema"`
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	State   string    `json:"state"`
	Time    time.Time `json:"time"`
	PID     int       `json:"pid"`
	Reverts []string  `json:"reverts,omitempty"`
	Files   []record  `json:"files"`
}

// record is one changed file: enough to put it back exactly.
type record struct {
	Path   string `json:"path"`
	Action string `json:"action"`
	// Previous state: Existed, Backup (file name in the entry), Meta.
	Existed bool   `json:"existed"`
	Backup  string `json:"backup,omitempty"`
	Meta    *meta  `json:"meta,omitempty"`
	OldHash string `json:"old_sha256,omitempty"`
	// New state: NewExists, NewHash.
	NewExists bool   `json:"new_exists"`
	NewHash   string `json:"new_sha256,omitempty"`
	// Dirs is, for an apply, the directories it had to create (removed
	// again when empty on revert); for a revert, the directories it
	// removes.
	Dirs []string `json:"dirs,omitempty"`
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// entry is a journal entry on disk.
type entry struct {
	id  string
	dir string // host path of the entry directory
	m   *manifest
}

// journal is the state directory of one root.
type journal struct {
	r     *inroot.Root
	state string // host path
}

func (j *journal) backups() string  { return path.Join(j.state, backupsDir) }
func (j *journal) reverted() string { return path.Join(j.state, revertedDir) }

func (j *journal) init() error {
	for _, d := range []string{j.state, j.backups(), j.reverted()} {
		if _, err := j.r.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	return nil
}

// entries lists the entries in backups/, oldest first, with their
// manifests (nil when missing).
func (j *journal) entries() ([]*entry, error) {
	d, err := j.r.OpenDir(j.backups())
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := readDirNames(d)
	if err != nil {
		return nil, &fs.PathError{Op: "list", Path: j.backups(), Err: err}
	}
	slices.Sort(names)
	var out []*entry
	for _, n := range names {
		if strings.HasPrefix(n, ".") {
			continue
		}
		e := &entry{id: n, dir: path.Join(j.backups(), n)}
		m, err := j.readManifest(e.dir)
		if err != nil {
			return nil, err
		}
		e.m = m
		out = append(out, e)
	}
	return out, nil
}

func (j *journal) readManifest(dir string) (*manifest, error) {
	t, err := readTarget(j.r, path.Join(dir, manifestName))
	if err != nil {
		return nil, err
	}
	if !t.exists {
		return nil, nil
	}
	var m manifest
	if err := json.Unmarshal(t.data, &m); err != nil {
		return nil, fmt.Errorf("%s/%s: %w (usernsctl's journal was edited or damaged; move the entry away to continue)", dir, manifestName, err)
	}
	if m.Schema != schema {
		return nil, fmt.Errorf("%s/%s: unknown schema %q (written by a newer usernsctl?)", dir, manifestName, m.Schema)
	}
	if err := m.valid(); err != nil {
		return nil, fmt.Errorf("%s/%s: %w (usernsctl's journal was edited or damaged; move the entry away to continue)", dir, manifestName, err)
	}
	return &m, nil
}

// valid checks what recovery and revert rely on.
func (m *manifest) valid() error {
	if m.State != statePending && m.State != stateCommitted {
		return fmt.Errorf("unknown state %q", m.State)
	}
	if m.Kind != kindApply && m.Kind != kindRevert {
		return fmt.Errorf("unknown kind %q", m.Kind)
	}
	for i, r := range m.Files {
		if c, err := inroot.Clean(r.Path); err != nil || c != r.Path {
			return fmt.Errorf("file %d: bad path %q", i, r.Path)
		}
		if r.Existed && (r.Meta == nil || r.Backup == "" || strings.ContainsRune(r.Backup, '/') || strings.HasPrefix(r.Backup, ".")) {
			return fmt.Errorf("file %d (%s): bad backup record", i, r.Path)
		}
		for _, d := range r.Dirs {
			if c, err := inroot.Clean(d); err != nil || c != d {
				return fmt.Errorf("file %d (%s): bad directory %q", i, r.Path, d)
			}
		}
	}
	return nil
}

// nextID names a new entry: a sequence number, so that order never
// depends on the clock, and the time for people.
func (j *journal) nextID(now time.Time) (string, error) {
	seq := 0
	for _, dir := range []string{j.backups(), j.reverted()} {
		d, err := j.r.OpenDir(dir)
		if err != nil {
			return "", err
		}
		names, err := readDirNames(d)
		d.Close()
		if err != nil {
			return "", err
		}
		for _, n := range names {
			num, _, _ := strings.Cut(n, "-")
			if v, err := strconv.Atoi(num); err == nil && v > seq {
				seq = v
			}
		}
	}
	return fmt.Sprintf("%06d-%s", seq+1, now.UTC().Format("20060102T150405Z")), nil
}

// create makes the entry directory, durably.
func (j *journal) create(id string) (*entry, error) {
	d, err := j.r.OpenDir(j.backups())
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := unix.Mkdirat(int(d.Fd()), id, 0o700); err != nil {
		return nil, &fs.PathError{Op: "mkdir", Path: path.Join(j.backups(), id), Err: err}
	}
	if err := d.Sync(); err != nil {
		return nil, &fs.PathError{Op: "fsync", Path: j.backups(), Err: err}
	}
	return &entry{id: id, dir: path.Join(j.backups(), id)}, nil
}

// saveBackup writes the previous bytes of a file into the entry.
func (j *journal) saveBackup(e *entry, name string, data []byte) error {
	d, err := j.r.OpenDir(e.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: path.Join(e.dir, name), Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return &fs.PathError{Op: "write", Path: path.Join(e.dir, name), Err: err}
	}
	if err := f.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: path.Join(e.dir, name), Err: err}
	}
	at("backup")
	return nil
}

// loadBackup reads a saved previous state back.
func (j *journal) loadBackup(e *entry, rec *record) ([]byte, error) {
	if !rec.Existed {
		return nil, nil
	}
	t, err := readTarget(j.r, path.Join(e.dir, rec.Backup))
	if err != nil {
		return nil, err
	}
	if !t.exists {
		return nil, fmt.Errorf("backup %s/%s of %s is missing", e.dir, rec.Backup, rec.Path)
	}
	if hash(t.data) != rec.OldHash {
		return nil, fmt.Errorf("backup %s/%s of %s does not match its recorded checksum", e.dir, rec.Backup, rec.Path)
	}
	return t.data, nil
}

// writeManifest replaces the entry's manifest atomically.
func (j *journal) writeManifest(e *entry) error {
	b, err := json.MarshalIndent(e.m, "", "  ")
	if err != nil {
		return err
	}
	d, err := j.r.OpenDir(e.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	at("manifest." + e.m.State)
	return writeAt(d, path.Join(e.dir, manifestName), manifestName, append(b, '\n'), newMeta(0o600))
}

// remove deletes an entry: the manifest first, so that a crash half-way
// leaves an entry without a manifest, which means "never happened".
func (j *journal) remove(e *entry) error {
	d, err := j.r.OpenDir(e.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(int(d.Fd()), manifestName, 0); err != nil && err != unix.ENOENT {
		d.Close()
		return &fs.PathError{Op: "remove", Path: path.Join(e.dir, manifestName), Err: err}
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	at("entry.unmanifested")
	names, _ := readDirNames(d)
	for _, n := range names {
		unix.Unlinkat(int(d.Fd()), n, 0)
	}
	d.Close()
	parent, err := j.r.OpenDir(j.backups())
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := unix.Unlinkat(int(parent.Fd()), e.id, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "remove", Path: e.dir, Err: err}
	}
	return parent.Sync()
}

// archive moves an entry from backups/ to reverted/.
func (j *journal) archive(id string) error {
	from, err := j.r.OpenDir(j.backups())
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := j.r.OpenDir(j.reverted())
	if err != nil {
		return err
	}
	defer to.Close()
	if err := unix.Renameat(int(from.Fd()), id, int(to.Fd()), id); err != nil {
		if err == unix.ENOENT {
			return nil // already archived
		}
		return &fs.PathError{Op: "rename", Path: path.Join(j.backups(), id), Err: err}
	}
	at("archived")
	if err := to.Sync(); err != nil {
		return err
	}
	return from.Sync()
}

// backupName names the saved copy of the i-th file of an entry.
func backupName(i int, p string) string { return strconv.Itoa(i) + "-" + path.Base(p) }
