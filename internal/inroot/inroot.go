// Package inroot opens directories by host path under a root directory so
// that nothing, not even a symlink planted in the tree, can take a write
// outside that root.
//
// With `--root DIR` every write must stay under DIR, yet DIR is a copy of a
// host and may hold absolute symlinks (/etc/docker -> /srv/docker) or
// relative ones that climb (etc/x -> ../../../tmp). Such links are resolved
// the way they would be if DIR were "/": openat2(2) with RESOLVE_IN_ROOT
// on Linux ≥5.6, and on older kernels (RHEL 8 is 4.18) or where seccomp
// refuses openat2, a walk that resolves each component itself, holding a
// descriptor per level so ".." never leaves the root either.
//
// Callers get a directory descriptor and do every further operation
// (openat, renameat, unlinkat, fsync) relative to it, so the path is
// resolved exactly once.
package inroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks bounds symlink expansion in the fallback walk, like the kernel's
// 40.
const maxLinks = 40

// Root is an open root directory.
type Root struct {
	fd   *os.File
	walk bool // openat2 unavailable: resolve in user space
}

// forceWalk makes Open use the user-space walk; tests set it to cover the
// path older kernels take.
var forceWalk bool

// Open opens dir as a root ("/" for the live host).
func Open(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: dir, Err: err}
	}
	r := &Root{fd: os.NewFile(uintptr(fd), dir), walk: forceWalk}
	if !r.walk {
		d, err := r.openat2(".")
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			r.walk = true
		} else if err == nil {
			d.Close()
		}
	}
	return r, nil
}

// Close releases the root descriptor.
func (r *Root) Close() error { return r.fd.Close() }

// Clean checks that p is an absolute host path naming something below the
// root and returns it cleaned.
func Clean(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q: host paths must be absolute", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("%q: not a file path", p)
	}
	return c, nil
}

// OpenDir opens the host directory dir for reading (and as a base for
// *at calls), resolving every symlink inside the root.
func (r *Root) OpenDir(dir string) (*os.File, error) {
	rel := strings.TrimPrefix(path.Clean("/"+dir), "/")
	if rel == "" {
		rel = "."
	}
	var (
		f   *os.File
		err error
	)
	if r.walk {
		f, err = r.walkDir(rel)
	} else {
		f, err = r.openat2(rel)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path.Clean("/" + dir), Err: unwrapPathErr(err)}
	}
	return f, nil
}

func (r *Root) openat2(rel string) (*os.File, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 { // EAGAIN: a concurrent rename raced the lookup; retry
		fd, err := unix.Openat2(int(r.fd.Fd()), rel, how)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), rel), nil
	}
	return nil, unix.EAGAIN
}

// walkDir resolves rel component by component. stack holds a descriptor
// for every directory on the way down, so ".." pops instead of looking
// anything up, and stops at the root.
func (r *Root) walkDir(rel string) (*os.File, error) {
	root, err := unix.Dup(int(r.fd.Fd()))
	if err != nil {
		return nil, err
	}
	stack := []int{root}
	defer func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
	}()
	todo := strings.Split(rel, "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				unix.Close(stack[len(stack)-1])
				stack = stack[:len(stack)-1]
			}
			continue
		}
		fd, err := unix.Openat(stack[len(stack)-1], c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			stack = append(stack, fd)
		case unix.S_IFLNK:
			target, err := readlinkFd(fd)
			unix.Close(fd)
			if err != nil {
				return nil, err
			}
			if links++; links > maxLinks {
				return nil, unix.ELOOP
			}
			if strings.HasPrefix(target, "/") {
				for _, fd := range stack[1:] {
					unix.Close(fd)
				}
				stack = stack[:1]
			}
			todo = append(strings.Split(target, "/"), todo...)
		default:
			unix.Close(fd)
			return nil, unix.ENOTDIR
		}
	}
	fd, err := unix.Openat(stack[len(stack)-1], ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// readlinkFd reads the target of a symlink opened with O_PATH|O_NOFOLLOW.
func readlinkFd(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// MkdirAll makes sure the host directory dir exists, creating missing
// components with perm, and returns the host paths it created, outermost
// first, so that a revert can remove exactly those.
func (r *Root) MkdirAll(dir string, perm os.FileMode) ([]string, error) {
	dir = path.Clean("/" + dir)
	if f, err := r.OpenDir(dir); err == nil {
		f.Close()
		return nil, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	parent, base := path.Split(dir)
	parent = path.Clean(parent)
	created, err := r.MkdirAll(parent, perm)
	if err != nil {
		return created, err
	}
	pf, err := r.OpenDir(parent)
	if err != nil {
		return created, err
	}
	defer pf.Close()
	if err := unix.Mkdirat(int(pf.Fd()), base, uint32(perm.Perm())); err == unix.EEXIST {
		// Created meanwhile by someone else, or a dangling link: only a
		// directory will do, and it is not ours to record.
		f, err := r.OpenDir(dir)
		if err != nil {
			return created, err
		}
		f.Close()
		return created, nil
	} else if err != nil {
		return created, &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	created = append(created, dir)
	// mkdir applies the umask; the mode asked for is the mode wanted.
	fd, err := unix.Openat(int(pf.Fd()), base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return created, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	err = unix.Fchmod(fd, uint32(perm.Perm()))
	unix.Close(fd)
	if err != nil {
		return created, &fs.PathError{Op: "chmod", Path: dir, Err: err}
	}
	if err := pf.Sync(); err != nil {
		return created, &fs.PathError{Op: "fsync", Path: parent, Err: err}
	}
	return created, nil
}

// RemoveEmptyDir removes the host directory dir if it is empty. It
// reports whether it did; a missing or non-empty directory is left alone.
func (r *Root) RemoveEmptyDir(dir string) (bool, error) {
	dir = path.Clean("/" + dir)
	parent, base := path.Split(dir)
	pf, err := r.OpenDir(parent)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer pf.Close()
	switch err := unix.Unlinkat(int(pf.Fd()), base, unix.AT_REMOVEDIR); err {
	case nil:
		if err := pf.Sync(); err != nil {
			return true, &fs.PathError{Op: "fsync", Path: parent, Err: err}
		}
		return true, nil
	case unix.ENOENT, unix.ENOTEMPTY, unix.EEXIST, unix.ENOTDIR:
		// Gone, in use, or not a directory (a symlink): not ours to remove.
		return false, nil
	default:
		return false, &fs.PathError{Op: "rmdir", Path: dir, Err: err}
	}
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
