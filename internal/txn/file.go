package txn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/inroot"
)

// Why not github.com/moby/sys/atomicwriter: it gives the new file a fixed
// mode but the temp file's owner and group (an /etc/shadow edited by root
// must stay root:shadow), does not fsync the directory after the rename
// (a power cut can bring the old file back), silently skips the rename
// when nothing was written (empty content never lands), refuses setuid and
// setgid files instead of keeping their bits, and works on path names, so
// it cannot write relative to a directory resolved inside --root.

// meta is what a replaced file keeps: permission bits, owner, group.
type meta struct {
	Mode uint32 `json:"mode"` // st_mode & 07777
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

func metaOf(st *unix.Stat_t) meta {
	return meta{Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid)}
}

// target is the current state of a host file, read without following a
// final symlink.
type target struct {
	exists bool
	data   []byte
	meta   meta
}

// tempMarker is in the name of every temporary file usernsctl creates next
// to a target, so recovery can find its own leftovers.
const tempMarker = ".usernsctl-"

// readTarget reads host path p under r. A missing file (or missing parent
// directory) is exists=false; a symlink, directory or other non-regular
// file is an error, since usernsctl would otherwise replace it by
// accident.
func readTarget(r *inroot.Root, p string) (target, error) {
	dir, base := path.Split(p)
	d, err := r.OpenDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return target{}, nil // no directory there: no file either
	}
	if err != nil {
		return target{}, err
	}
	defer d.Close()
	return readAt(d, p, base)
}

func readAt(d *os.File, p, base string) (target, error) {
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case err == unix.ENOENT:
		return target{}, nil
	case err == unix.ELOOP:
		return target{}, symlinkErr(d, p, base)
	case err != nil:
		return target{}, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return target{}, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if err := regular(p, st.Mode); err != nil {
		return target{}, err
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(f, host.MaxFileSize+1))
	if err != nil {
		return target{}, &fs.PathError{Op: "read", Path: p, Err: err}
	}
	if n > host.MaxFileSize {
		return target{}, &fs.PathError{Op: "read", Path: p, Err: host.ErrTooLarge}
	}
	data := buf.Bytes()
	if data == nil {
		data = []byte{} // exists, empty: not the same as absent
	}
	return target{exists: true, data: data, meta: metaOf(&st)}, nil
}

func regular(p string, mode uint32) error {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFDIR:
		return fmt.Errorf("%s %w: it is a directory; refusing to replace it", p, ErrNotRegular)
	default:
		return fmt.Errorf("%s %w (mode %#o); refusing to replace it", p, ErrNotRegular, mode&unix.S_IFMT)
	}
}

func symlinkErr(d *os.File, p, base string) error {
	to := "?"
	buf := make([]byte, 4096)
	if n, err := unix.Readlinkat(int(d.Fd()), base, buf); err == nil {
		to = string(buf[:n])
	}
	return fmt.Errorf("%s %w to %s: refusing to replace the link; change the file it points to, or remove the link, and run again", p, ErrSymlink, to)
}

// newMeta is the metadata of a file usernsctl creates: mode (0644 when
// unset), owned by root:root when running as root, else by the caller
// (--root trees built by an unprivileged user).
func newMeta(mode fs.FileMode) meta {
	if mode == 0 {
		mode = 0o644
	}
	m := meta{Mode: uint32(mode.Perm()), UID: -1, GID: -1}
	if mode&fs.ModeSetuid != 0 {
		m.Mode |= unix.S_ISUID
	}
	if mode&fs.ModeSetgid != 0 {
		m.Mode |= unix.S_ISGID
	}
	if os.Geteuid() == 0 {
		m.UID, m.GID = 0, 0
	}
	return m
}

// copiedXattrs are carried from a replaced file to its replacement: the
// SELinux label (else the daemon reading the file may be denied) and a
// POSIX ACL.
var copiedXattrs = []string{"security.selinux", "system.posix_acl_access"}

// writeAt replaces (or creates) the file base in directory d with data,
// atomically: a temporary file in the same directory, written, owned and
// moded like the file it replaces (or as m says), fsynced, renamed over
// the target, and the directory fsynced. Readers see the old bytes or the
// new, never a mix, and after a crash the file is one or the other.
func writeAt(d *os.File, p, base string, data []byte, m meta) (err error) {
	dfd := int(d.Fd())
	var old int = -1
	var st unix.Stat_t
	switch err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == unix.ENOENT:
	case err != nil:
		return &fs.PathError{Op: "stat", Path: p, Err: err}
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return symlinkErr(d, p, base)
	default:
		if err := regular(p, st.Mode); err != nil {
			return err
		}
		if fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
			old = fd
			defer unix.Close(old)
		}
	}

	tmp := "." + base + tempMarker + randHex()
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: path.Join(path.Dir(p), tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	at("temp.created")

	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		return &fs.PathError{Op: "write", Path: p, Err: err}
	}
	at("temp.half")
	if _, err := f.Write(data[half:]); err != nil {
		return &fs.PathError{Op: "write", Path: p, Err: err}
	}
	if err := setMeta(fd, old, p, m); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: p, Err: err}
	}
	at("temp.synced")
	if err := f.Close(); err != nil {
		return &fs.PathError{Op: "close", Path: p, Err: err}
	}
	f = nil
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		return &fs.PathError{Op: "rename", Path: p, Err: err}
	}
	at("renamed")
	if err := d.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: path.Dir(p), Err: err}
	}
	at("dir.synced")
	return nil
}

// setMeta gives the temporary file fd the owner, extended attributes and
// mode it must have. chown comes first: it clears setuid and setgid bits.
func setMeta(fd, old int, p string, m meta) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if (m.UID >= 0 && uint32(m.UID) != st.Uid) || (m.GID >= 0 && uint32(m.GID) != st.Gid) {
		if err := unix.Fchown(fd, m.UID, m.GID); err != nil {
			return fmt.Errorf("cannot keep owner %d:%d of %s: %w (usernsctl must run as root to change this file)", m.UID, m.GID, p, err)
		}
	}
	if old >= 0 {
		for _, name := range copiedXattrs {
			if err := copyXattr(old, fd, name); err != nil {
				return fmt.Errorf("cannot keep %s of %s: %w", name, p, err)
			}
		}
	}
	if err := unix.Fchmod(fd, m.Mode); err != nil {
		return &fs.PathError{Op: "chmod", Path: p, Err: err}
	}
	return nil
}

func copyXattr(from, to int, name string) error {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Fgetxattr(from, name, buf)
		switch {
		case err == unix.ERANGE:
			buf = make([]byte, len(buf)*4)
			continue
		case err == unix.ENODATA || err == unix.ENOTSUP:
			return nil
		case err != nil:
			return err
		}
		return unix.Fsetxattr(to, name, buf[:n], 0)
	}
}

// removeAt removes the file base from directory d and fsyncs d.
func removeAt(d *os.File, p, base string) error {
	var st unix.Stat_t
	switch err := unix.Fstatat(int(d.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == unix.ENOENT:
		return nil
	case err != nil:
		return &fs.PathError{Op: "stat", Path: p, Err: err}
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return symlinkErr(d, p, base)
	default:
		if err := regular(p, st.Mode); err != nil {
			return err
		}
	}
	if err := unix.Unlinkat(int(d.Fd()), base, 0); err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "remove", Path: p, Err: err}
	}
	at("removed")
	if err := d.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: path.Dir(p), Err: err}
	}
	return nil
}

// removeTemps deletes leftovers of writeAt for base in directory d: a
// process killed between creating and renaming its temporary file leaves
// one behind.
func removeTemps(d *os.File, base string) {
	names, err := readDirNames(d)
	if err != nil {
		return
	}
	for _, n := range names {
		if strings.HasPrefix(n, "."+base+tempMarker) {
			unix.Unlinkat(int(d.Fd()), n, 0)
		}
	}
}

// readDirNames lists directory d without moving d's own offset for later
// callers: it reads through a fresh descriptor.
func readDirNames(d *os.File) ([]string, error) {
	fd, err := unix.Openat(int(d.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

func randHex() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
