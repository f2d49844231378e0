// Package procfs reads what verify and ns need from /proc/PID through the
// host seam, so that a recorded tree (--root) reads like a live host: a
// process's parent and name, its namespaces (by the inodes of the
// /proc/PID/ns links), its uid and gid maps and its mount table.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/internal/host"
)

// Kinds are the namespaces ns shows, in /proc/PID/ns order.
var Kinds = []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}

// Dir is /proc/PID.
func Dir(pid int) string { return "/proc/" + strconv.Itoa(pid) }

// Stat is what /proc/PID/stat says about a process's place in the tree.
type Stat struct {
	PID   int    `json:"pid"`
	PPID  int    `json:"ppid"`
	Comm  string `json:"comm"`
	State string `json:"state"`
}

// ReadStat reads /proc/PID/stat. comm may hold spaces and parentheses:
// the fields after it start after the LAST ')'.
func ReadStat(h *host.Host, pid int) (Stat, error) {
	p := Dir(pid) + "/stat"
	b, err := h.ReadFile(p)
	if err != nil {
		return Stat{}, err
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("%s:1: no \"(comm)\" field: not a /proc stat file", p)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 {
		return Stat{}, fmt.Errorf("%s:1: %d fields after comm, want state and ppid at least", p, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil || ppid < 0 {
		return Stat{}, fmt.Errorf("%s:1: parent pid %q is not a pid", p, f[1])
	}
	return Stat{PID: pid, PPID: ppid, Comm: string(b[open+1 : end]), State: f[0]}, nil
}

// nsLink matches a namespace link's target: "user:[4026531837]".
var nsLink = regexp.MustCompile(`^([a-z_]+):\[([0-9]+)\]$`)

// Namespace returns the inode of /proc/PID/ns/KIND. Two processes are in
// the same namespace exactly when the inodes are equal (the nsfs device
// is one per boot), whichever namespace reads them.
func Namespace(h *host.Host, pid int, kind string) (uint64, error) {
	p := Dir(pid) + "/ns/" + kind
	link, err := h.Readlink(p)
	if err != nil {
		return 0, err
	}
	m := nsLink.FindStringSubmatch(link)
	if m == nil || m[1] != kind {
		return 0, fmt.Errorf("%s: link %q is not a %s namespace (want %s:[INODE])", p, clip([]byte(link)), kind, kind)
	}
	ino, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: inode in %q: %v", p, link, err)
	}
	return ino, nil
}

// ReadIDMap reads /proc/PID/uid_map or gid_map (file "uid_map" or
// "gid_map"). The outside ids are relative to the reader's user namespace.
func ReadIDMap(h *host.Host, pid int, file string) ([]IDMap, error) {
	p := Dir(pid) + "/" + file
	b, err := h.ReadFile(p)
	if err != nil {
		return nil, err
	}
	m, err := ParseIDMap(bytes.NewReader(b), p)
	if err == nil && len(m) == 0 {
		// An empty map: the namespace's owner has not written it yet (a
		// runtime mid-setup), or the file was recorded empty.
		return nil, fmt.Errorf("%s is empty: the user namespace has no map yet", p)
	}
	return m, err
}

// Cmdline reads /proc/PID/cmdline as its NUL-separated words.
func Cmdline(h *host.Host, pid int) ([]string, error) {
	b, err := h.ReadFile(Dir(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}

// hexID is a 64-digit container ID as Docker, containerd's CRI and CRI-O
// name cgroups ("docker-<id>.scope", "/docker/<id>", "cri-containerd-<id>").
var hexID = regexp.MustCompile(`[0-9a-f]{64}`)

// ContainerID guesses the container of pid from its cgroup path; "" when
// none shows.
func ContainerID(h *host.Host, pid int) string {
	b, err := h.ReadFile(Dir(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	ids := hexID.FindAll(b, -1)
	if len(ids) == 0 {
		return ""
	}
	return string(ids[len(ids)-1])
}

// PIDs lists the processes in /proc, sorted.
func PIDs(h *host.Host) ([]int, error) {
	ents, err := h.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out, nil
}

// Ancestry returns pid's parents, nearest first, up to (not including)
// PID 0. It stops at a loop or after 64 steps: a recorded tree may lie.
func Ancestry(h *host.Host, pid int) ([]Stat, error) {
	var out []Stat
	seen := map[int]bool{pid: true}
	st, err := ReadStat(h, pid)
	if err != nil {
		return nil, err
	}
	for next := st.PPID; next > 0 && len(out) < 64 && !seen[next]; {
		seen[next] = true
		p, err := ReadStat(h, next)
		if err != nil {
			return out, err
		}
		out = append(out, p)
		next = p.PPID
	}
	return out, nil
}

// IsRuntime reports whether comm names a process that starts containers:
// a containerd shim ("containerd-shim" is comm's 15-byte cut of
// containerd-shim-runc-v2), conmon (CRI-O, Podman), or the daemons.
func IsRuntime(comm string) bool {
	switch {
	case strings.HasPrefix(comm, "containerd-shim"), comm == "conmon":
		return true
	case comm == "containerd", comm == "dockerd", comm == "crio":
		return true
	}
	return false
}

// ErrNoProcess is a pid with no /proc entry.
var ErrNoProcess = errors.New("no such process")
