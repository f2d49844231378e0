// Package rootless holds the rootless.* checks: what rootless mode needs
// from the host's tools.
package rootless

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/checks"
)

// Checkers returns the rootless.* checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "rootless.newidmap", Title: "newuidmap and newgidmap",
			Doc:     "newuidmap and newgidmap are installed and setuid root, or carry the file capabilities cap_setuid / cap_setgid.",
			Targets: []checks.Target{checks.Rootless},
		}, checkNewIDMap),
	}
}

var idmapDirs = []string{"/usr/bin", "/bin", "/usr/sbin"}

// File capability xattr layout (linux/capability.h, struct vfs_cap_data).
const (
	vfsCapRevisionMask = 0xFF000000
	vfsCapRevision1    = 0x01000000 // 32-bit capabilities
	vfsCapRevision2    = 0x02000000 // 64-bit capabilities
	vfsCapRevision3    = 0x03000000 // 64-bit plus the namespace root uid
	vfsCapEffective    = 0x000001
)

// fileCaps is a decoded security.capability xattr.
type fileCaps struct {
	permitted uint64
	effective bool
	rootID    uint32 // revision 3: the caps apply only in the namespace whose root this uid is
	revision  int
}

func (c fileCaps) has(bit int) bool { return c.permitted&(1<<uint(bit)) != 0 }

func decodeCaps(b []byte) (fileCaps, error) {
	if len(b) < 4 {
		return fileCaps{}, fmt.Errorf("%d bytes is too short for a capability set", len(b))
	}
	le := binary.LittleEndian
	magic := le.Uint32(b)
	c := fileCaps{effective: magic&vfsCapEffective != 0}
	need := 0
	switch magic & vfsCapRevisionMask {
	case vfsCapRevision1:
		c.revision, need = 1, 12
	case vfsCapRevision2:
		c.revision, need = 2, 20
	case vfsCapRevision3:
		c.revision, need = 3, 24
	default:
		return fileCaps{}, fmt.Errorf("unknown capability revision %#x", magic&vfsCapRevisionMask)
	}
	if len(b) < need {
		return fileCaps{}, fmt.Errorf("revision %d capability set needs %d bytes, has %d", c.revision, need, len(b))
	}
	c.permitted = uint64(le.Uint32(b[4:]))
	if c.revision >= 2 {
		c.permitted |= uint64(le.Uint32(b[12:])) << 32
	}
	if c.revision == 3 {
		c.rootID = le.Uint32(b[20:])
	}
	return c, nil
}

type idmapTool struct {
	name   string
	cap    int
	capStr string
}

var idmapTools = []idmapTool{
	{"newuidmap", unix.CAP_SETUID, "cap_setuid"},
	{"newgidmap", unix.CAP_SETGID, "cap_setgid"},
}

func checkNewIDMap(_ context.Context, env *checks.Env) checks.Result {
	var ok, bad, missing, fixes []string
	evidence := map[string]string{}
	for _, t := range idmapTools {
		p, fi := findTool(env, t.name)
		if p == "" {
			missing = append(missing, t.name)
			evidence[t.name] = "missing"
			continue
		}
		how, why := privileged(env, p, fi, t)
		if how != "" {
			ok = append(ok, fmt.Sprintf("%s is %s", p, how))
			evidence[t.name] = p + ": " + how
			continue
		}
		bad = append(bad, fmt.Sprintf("%s %s", p, why))
		evidence[t.name] = p + ": " + why
		fixes = append(fixes, fmt.Sprintf("`chown root:root %s && chmod u+s %s`, or give it the capability instead: `setcap %s+ep %s`", p, p, t.capStr, p))
	}
	if len(missing) == 0 && len(bad) == 0 {
		return checks.Passf("%s", strings.Join(ok, "; ")).With("tools", evidence)
	}
	var problems []string
	remedy := strings.Join(fixes, "\n")
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%s not found in %s", strings.Join(missing, " and "), strings.Join(idmapDirs, ", ")))
		remedy = installUIDMap(env) // the package brings both, privileged
	}
	problems = append(problems, bad...)
	r := checks.Failf(remedy, "%s: an unprivileged user cannot write its subordinate ranges to uid_map/gid_map, so rootless containers cannot map more than one id",
		strings.Join(problems, "; "))
	return r.With("tools", evidence)
}

func findTool(env *checks.Env, name string) (string, fs.FileInfo) {
	for _, d := range idmapDirs {
		p := path.Join(d, name)
		if fi, err := env.Host.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, fi
		}
	}
	return "", nil
}

// privileged says how a tool gets its privilege ("setuid root", "file
// capability cap_setuid+ep"), or why it has none.
func privileged(env *checks.Env, p string, fi fs.FileInfo, t idmapTool) (how, why string) {
	mode := fi.Mode()
	uid := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid = int(st.Uid)
	}
	if mode&fs.ModeSetuid != 0 && uid == 0 && mode&0o001 != 0 {
		return "setuid root", ""
	}
	raw, has, err := env.Host.Xattr(p, "security.capability")
	switch {
	case err != nil:
		why = fmt.Sprintf("is not setuid root and its file capabilities could not be read: %v", err)
	case has:
		c, derr := decodeCaps(raw)
		switch {
		case derr != nil:
			why = fmt.Sprintf("has a security.capability xattr that does not decode: %v", derr)
		case !c.has(t.cap):
			why = fmt.Sprintf("has file capabilities without %s", t.capStr)
		case !c.effective:
			why = fmt.Sprintf("has %s permitted but not effective (+p without e)", t.capStr)
		case c.revision == 3 && c.rootID != 0:
			why = fmt.Sprintf("has %s only for the user namespace rooted at uid %d", t.capStr, c.rootID)
		default:
			return fmt.Sprintf("given file capability %s+ep", t.capStr), ""
		}
	default:
		why = "is neither setuid root nor given file capabilities"
	}
	switch {
	case mode&fs.ModeSetuid != 0 && uid != 0:
		why += fmt.Sprintf(" (it is setuid, but owned by uid %d, not root)", uid)
	case mode&fs.ModeSetuid != 0:
		why += " (it is setuid root, but not executable by others)"
	}
	return "", why
}

// installUIDMap names the package that ships the tools on this distro.
func installUIDMap(env *checks.Env) string {
	const deb, rpm = "apt-get install uidmap", "dnf install shadow-utils"
	b, err := env.Host.ReadFile("/etc/os-release")
	if err != nil || len(b) == 0 {
		return fmt.Sprintf("Debian/Ubuntu: `%s`; Fedora/RHEL: `%s`", deb, rpm)
	}
	ids := ""
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && (k == "ID" || k == "ID_LIKE") {
			ids += " " + strings.Trim(v, `"'`)
		}
	}
	for _, f := range strings.Fields(ids) {
		switch f {
		case "debian", "ubuntu":
			return deb
		case "fedora", "rhel", "centos":
			return rpm
		}
	}
	return fmt.Sprintf("Debian/Ubuntu: `%s`; Fedora/RHEL: `%s`", deb, rpm)
}
