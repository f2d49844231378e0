package host

import (
	"errors"
	"io/fs"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxXattr is the kernel's limit on one extended attribute value.
const maxXattr = 64 << 10

// Xattr reads the extended attribute name of host path p, without
// following a final symlink (a file capability belongs to the file, not to
// a link to it). ok is false when the file has no such attribute or its
// filesystem keeps none. It counts as a stat for snapshots, which copy the
// capability attribute of every file they stat.
func (h *Host) Xattr(p, name string) (val []byte, ok bool, err error) {
	h.Note(p, Stat)
	real, get := h.Path(p), unix.Lgetxattr
	if h.tree != nil && h.tree.fd >= 0 {
		// Resolve inside the tree like every other read, then read the
		// attribute of what was found through its descriptor (an O_PATH
		// descriptor has no fgetxattr; its /proc/self/fd link leads to the
		// very inode, final symlink included).
		fd, err := h.tree.openat2(rel(p), unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, false, hostErr(p, &fs.PathError{Op: "getxattr", Path: p, Err: fs.ErrNotExist})
			}
			return nil, false, &fs.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		defer unix.Close(fd)
		real, get = "/proc/self/fd/"+strconv.Itoa(fd), unix.Getxattr
	}
	for attempt := 0; attempt < 3; attempt++ {
		size, err := get(real, name, nil)
		if err == nil && size <= maxXattr {
			buf := make([]byte, size)
			var n int
			n, err = get(real, name, buf)
			if err == nil {
				return buf[:n], true, nil
			}
		} else if err == nil {
			err = unix.E2BIG
		}
		switch {
		case errors.Is(err, unix.ERANGE):
			continue // the attribute grew between the two calls
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return nil, false, nil
		}
		return nil, false, &fs.PathError{Op: "getxattr " + name, Path: p, Err: err}
	}
	return nil, false, &fs.PathError{Op: "getxattr " + name, Path: p, Err: unix.ERANGE}
}
