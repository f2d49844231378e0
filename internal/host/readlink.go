package host

import "os"

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
