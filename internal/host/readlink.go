package host

import (
	"io/fs"
	"os"
	"path"
	"syscall"
)

// Readlink returns the target of the host symbolic link p without
// following it. /proc/PID/ns/user reads "user:[4026531837]": comparing
// namespaces by these inodes is the one view that is the same from every
// process, and a snapshot keeps the links as they are.
func (h *Host) Readlink(p string) (string, error) {
	h.Note(p, Stat)
	if h.tree != nil {
		s, err := h.tree.readlink(rel(p))
		return s, hostErr(p, err)
	}
	s, err := os.Readlink(h.Path(p))
	return s, hostErr(p, err)
}

// maxLinks bounds a chain of symbolic links, as the kernel's ELOOP does.
const maxLinks = 40

// FinalTarget follows p while it is a symbolic link and returns the host
// path it ends at (relative targets against the link's directory; in a
// snapshot tree, absolute ones stay inside it). The last path need not
// exist. Directories on the way are not resolved: the write path takes
// them as they are.
func (h *Host) FinalTarget(p string) (string, error) {
	p = path.Clean(p)
	for range maxLinks {
		fi, err := h.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		t, err := h.Readlink(p)
		if err != nil {
			return "", err
		}
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(p), t)
		}
		p = path.Clean(t)
	}
	return "", &fs.PathError{Op: "readlink", Path: p, Err: syscall.ELOOP}
}
