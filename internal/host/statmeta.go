package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// StatFile is where a snapshot tree records the mode and owner of the
// paths it holds: a checkout (git) or an unprivileged copy keeps neither
// directory modes nor owners, and checks read both (dockerd's search
// permission test above the remapped data root, setuid root tools).
const StatFile = "/.usernsctl/stat.json"

// Meta is one path's recorded mode and owner. Mode is octal text with the
// setuid, setgid and sticky bits ("0750", "4755").
type Meta struct {
	Mode string `json:"mode,omitempty"`
	UID  *int   `json:"uid,omitempty"`
	GID  *int   `json:"gid,omitempty"`
}

// MetaOf is what a Stat of a live file records.
func MetaOf(fi fs.FileInfo) Meta {
	m := Meta{Mode: fmt.Sprintf("%04o", unixPerm(fi.Mode()))}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid := int(st.Uid), int(st.Gid)
		m.UID, m.GID = &uid, &gid
	}
	return m
}

func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		p |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		p |= unix.S_ISVTX
	}
	return p
}

// loadMeta reads the tree's StatFile; a tree without one has none.
func (t *tree) loadMeta() (map[string]Meta, error) {
	f, err := t.open(rel(StatFile))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize))
	if err != nil {
		return nil, err
	}
	var raw map[string]Meta
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", StatFile, err)
	}
	out := make(map[string]Meta, len(raw))
	for p, m := range raw {
		if m.Mode != "" {
			if _, err := strconv.ParseUint(m.Mode, 8, 12); err != nil {
				return nil, fmt.Errorf("%s: %s: mode %q is not octal", StatFile, p, m.Mode)
			}
		}
		out[path.Clean("/"+p)] = m
	}
	return out, nil
}

// withMeta applies the recorded mode and owner of host path p to fi (not
// to a symbolic link itself).
func (h *Host) withMeta(p string, fi fs.FileInfo) fs.FileInfo {
	m, ok := h.meta[path.Clean("/"+p)]
	if !ok || fi == nil || fi.Mode()&fs.ModeSymlink != 0 {
		return fi
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	var s syscall.Stat_t
	if st != nil {
		s = *st
	}
	if m.Mode != "" {
		v, _ := strconv.ParseUint(m.Mode, 8, 12)
		s.Mode = s.Mode&unix.S_IFMT | uint32(v)
	}
	if m.UID != nil {
		s.Uid = uint32(*m.UID)
	}
	if m.GID != nil {
		s.Gid = uint32(*m.GID)
	}
	return metaInfo{FileInfo: fi, st: s, setMode: m.Mode != ""}
}

// metaInfo is a FileInfo with the recorded mode and owner.
type metaInfo struct {
	fs.FileInfo
	st      syscall.Stat_t
	setMode bool
}

func (m metaInfo) Mode() fs.FileMode {
	if !m.setMode {
		return m.FileInfo.Mode()
	}
	return m.FileInfo.Mode().Type() | statInfo{st: m.st}.Mode()&^fs.ModeType
}

func (m metaInfo) Sys() any { return &m.st }
