package verify

import (
	"fmt"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Root file system mechanisms, as /proc/PID/mountinfo shows them.
const (
	// rootIdmapped: the root mount itself carries the idmapped option.
	rootIdmapped = "idmapped root mount"
	// lowerIdmapped: an overlay whose lower layers are idmapped bind
	// mounts (containerd 2.x puts them under temporary ovl-idmapped*
	// directories): no copy of the image per mapping.
	lowerIdmapped = "overlay over idmapped lower layers"
	// chowned: no idmap anywhere, yet a user namespace: the snapshot was
	// copied and chowned for this mapping (containerd 1.7, slow_chown).
	chowned = "chowned snapshot copy"
)

// rootMount is the process's "/" (the last one mounted there wins).
func rootMount(ms []*mountinfo.Info) *mountinfo.Info {
	var root *mountinfo.Info
	for _, m := range ms {
		if m.Mountpoint == "/" {
			root = m
		}
	}
	return root
}

func hasOpt(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// lowerdirs are an overlay's lower layers from its super options: one
// "lowerdir=a:b" (":" escaped as "\:" inside a path), or "lowerdir+=a"
// options (the new mount API, kernels ≥6.8).
func lowerdirs(vfs string) []string {
	var out []string
	for _, o := range strings.Split(vfs, ",") {
		if v, ok := strings.CutPrefix(o, "lowerdir+="); ok {
			out = append(out, v)
			continue
		}
		v, ok := strings.CutPrefix(o, "lowerdir=")
		if !ok {
			continue
		}
		cur := ""
		for i := 0; i < len(v); i++ {
			switch {
			case v[i] == '\\' && i+1 < len(v):
				cur += v[i+1 : i+2]
				i++
			case v[i] == ':':
				out = append(out, cur)
				cur = ""
			default:
				cur += v[i : i+1]
			}
		}
		out = append(out, cur)
	}
	return out
}

// classifyRoot names the mechanism that makes the rootfs readable to the
// container's root, with the evidence.
func classifyRoot(m *mountinfo.Info) (kind, detail string) {
	if hasOpt(m.Options, "idmapped") {
		return rootIdmapped, fmt.Sprintf("%s on / has the idmapped option", m.FSType)
	}
	if m.FSType == "overlay" {
		lows := lowerdirs(m.VFSOptions)
		n := 0
		for _, l := range lows {
			if strings.Contains(l, "ovl-idmapped") {
				n++
			}
		}
		if n > 0 {
			return lowerIdmapped, fmt.Sprintf("%d of %d lower layers under ovl-idmapped directories (%s)", n, len(lows), lows[0])
		}
		if len(lows) > 0 {
			return chowned, fmt.Sprintf("overlay on / with %d plain lower %s (%s)", len(lows), plural(len(lows), "layer", "layers"), lows[0])
		}
		return chowned, "overlay on / without idmapped options"
	}
	return chowned, fmt.Sprintf("%s on / (%s) without the idmapped option", m.FSType, m.Root)
}

// pseudoFS are the kernel file systems a runtime mounts itself; they are
// never volumes.
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "devpts": true, "mqueue": true, "cgroup": true, "cgroup2": true,
	"securityfs": true, "debugfs": true, "tracefs": true, "bpf": true, "fusectl": true, "configfs": true,
}

// volumeMounts are the mounts the kubelet asks for: bind mounts of
// volume directories (their root is under .../volumes/ or
// .../volume-subpaths/) and tmpfs volumes (secrets, projected tokens,
// emptyDir medium Memory), outside the runtime's own /proc, /sys and /dev.
// A tmpfs the runtime made inside the container (/run) is not one: made in
// the container's namespace, it shows container root's host id as its
// uid= option (rootUID), where the kubelet's, made on the host, shows none.
func volumeMounts(ms []*mountinfo.Info, rootUID uint64, mapped bool) []*mountinfo.Info {
	own := fmt.Sprintf("uid=%d", rootUID)
	var out []*mountinfo.Info
	for _, m := range ms {
		mp := m.Mountpoint
		if mp == "/" || pseudoFS[m.FSType] || under(mp, "/proc") || under(mp, "/sys") || under(mp, "/dev") {
			continue
		}
		switch {
		case strings.Contains(m.Root, "/volumes/"), strings.Contains(m.Root, "/volume-subpaths/"):
			out = append(out, m)
		case m.FSType == "tmpfs" && !(mapped && hasOpt(m.VFSOptions, own)):
			out = append(out, m)
		}
	}
	return out
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
