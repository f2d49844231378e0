package host

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A snapshot tree is read as if it were "/": every symlink in it, absolute
// or climbing with "..", resolves inside the tree (openat2 RESOLVE_IN_ROOT,
// Linux ≥ 5.6), so a mask "/etc/sysctl.d/x.conf -> /dev/null" or a merged
// "/lib -> usr/lib" means what it means on the host, and no link can lead
// a read out of the tree into the machine running the check. Kernels
// without openat2 fall back to os.Root, which refuses links that leave
// the tree instead of re-rooting them.
type tree struct {
	dir  string
	fd   int
	root *os.Root // fallback
}

func openTree(dir string) (*tree, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.Close()
		return nil, err
	}
	t := &tree{dir: dir, fd: fd, root: r}
	if _, err := t.openat2(".", unix.O_PATH); errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		unix.Close(fd)
		t.fd = -1 // seccomp or an old kernel: os.Root it is
	}
	return t, nil
}

func (t *tree) openat2(rel string, flags int) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(t.fd, rel, how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

func (t *tree) open(rel string) (*os.File, error) {
	if t.fd < 0 {
		return t.root.Open(rel)
	}
	fd, err := t.openat2(rel, unix.O_RDONLY)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), path.Join(t.dir, rel)), nil
}

// openWrite opens an existing file inside the tree for writing, truncated.
func (t *tree) openWrite(rel string) (*os.File, error) {
	if t.fd < 0 {
		return t.root.OpenFile(rel, os.O_WRONLY|os.O_TRUNC, 0)
	}
	fd, err := t.openat2(rel, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), path.Join(t.dir, rel)), nil
}

// stat follows a final symlink (inside the tree); lstat does not.
func (t *tree) stat(rel string, follow bool) (fs.FileInfo, error) {
	if t.fd < 0 {
		if follow {
			return t.root.Stat(rel)
		}
		return t.root.Lstat(rel)
	}
	flags := unix.O_PATH
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := t.openat2(rel, flags)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: rel, Err: err}
	}
	defer unix.Close(fd)
	// syscall.Stat_t, the type os.Stat's Sys() carries, so callers that
	// read the owner treat both seams alike.
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: rel, Err: err}
	}
	return statInfo{name: path.Base(rel), st: st}, nil
}

func (t *tree) readlink(rel string) (string, error) {
	if t.fd < 0 {
		return t.root.Readlink(rel)
	}
	fd, err := t.openat2(rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: rel, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: rel, Err: err}
	}
	return string(buf[:n]), nil
}

// fsys serves fs.ReadDir and fs.Glob with the same confinement.
type treeFS struct{ t *tree }

func (f treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return f.t.open(name)
}

// statInfo is fs.FileInfo from a raw stat.
type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (s statInfo) Name() string { return s.name }
func (s statInfo) Size() int64  { return s.st.Size }
func (s statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if s.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
func (s statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s statInfo) Sys() any           { return &s.st }
