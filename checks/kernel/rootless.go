package kernel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/errs"
)

// --- AppArmor ---------------------------------------------------------

// rootlesskitPaths are where packages and installers put rootlesskit.
var rootlesskitPaths = []string{"/usr/bin/rootlesskit", "/usr/local/bin/rootlesskit", "/bin/rootlesskit"}

const apparmorDir = "/etc/apparmor.d"

func checkAppArmor(_ context.Context, env *checks.Env) checks.Result {
	k := loadKnob(env, "kernel.apparmor_restrict_unprivileged_userns")
	switch {
	case k.absent():
		return k.with(checks.Skipf("%s does not exist: this kernel has no AppArmor restriction of unprivileged user namespaces (Ubuntu 23.10 added it)", k.proc))
	case k.liveErr != nil:
		return k.liveWarn("")
	}
	pv, pset := k.persisted()
	restricted := k.live == "1"
	later := !restricted && pset && pv == "1" // off now, on after the next boot
	if !restricted && !later {
		return k.with(checks.Passf("%s is %s (%s): unconfined programs may create user namespaces; %s", k.key, k.live, k.proc, k.describe()))
	}
	if b, err := env.Host.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "N" {
		return k.with(checks.Passf("%s is %s (%s), but AppArmor is disabled (/sys/module/apparmor/parameters/enabled is N), so nothing is restricted", k.key, k.live, k.proc))
	}

	var installed []string
	for _, p := range rootlesskitPaths {
		if fi, err := env.Host.Stat(p); err == nil && fi.Mode().IsRegular() {
			installed = append(installed, p)
		}
	}
	bins := installed
	if len(bins) == 0 {
		bins = rootlesskitPaths[:1] // where the packages install it
	}
	profiles := loadProfiles(env, bins)
	var granted, missing []string
	var fixes []string
	for _, bin := range bins {
		p := profiles.forBinary(bin)
		switch {
		case p != nil && p.userns != "":
			granted = append(granted, fmt.Sprintf("%s (profile %s line %d, `userns,` at %s)", bin, p.file, p.line, p.userns))
		case p != nil:
			missing = append(missing, fmt.Sprintf("%s (profile %s line %d has no `userns,` rule)", bin, p.file, p.line))
			fixes = append(fixes, fmt.Sprintf("add the line `  userns,` inside the profile at %s line %d, then `apparmor_parser -r %s`", p.file, p.line, p.file))
		default:
			missing = append(missing, bin+" (no profile attaches to it)")
			fixes = append(fixes, profileFix(bin))
		}
	}
	r := k.with(checks.Result{}).With("rootlesskit", installed).With("profiles_scanned", profiles.scanned)
	state := fmt.Sprintf("%s is %s (%s)", k.key, k.live, k.proc)
	if later {
		state = fmt.Sprintf("%s is 0 now (%s), but %s persists 1", k.key, k.proc, k.res.Final.Where())
	}
	if len(missing) == 0 {
		r.Status, r.Message = checks.Pass, fmt.Sprintf("%s, and AppArmor grants user namespaces to %s", state, strings.Join(granted, ", "))
		return r
	}
	notInstalled := ""
	if len(installed) == 0 {
		notInstalled = " (rootlesskit is not installed yet; packages put it there)"
	}
	r.Message = fmt.Sprintf("%s: unconfined programs may not create user namespaces, and there is no AppArmor profile granting `userns,` to %s%s, so rootless containers fail with \"Failed to create user namespace: Permission denied\"",
		state, strings.Join(missing, ", "), notInstalled)
	r.Remedy = strings.Join(fixes, "\n") + "\n(a profile for the binary is the fix; setting the sysctl to 0 lifts the protection for every program)"
	r.Status = checks.Fail
	if later {
		r.Status = checks.Warn
	}
	return r
}

func profileFix(bin string) string {
	name := strings.ReplaceAll(strings.TrimPrefix(bin, "/"), "/", ".")
	file := path.Join(apparmorDir, name)
	return fmt.Sprintf(`cat > %s <<'EOF'
abi <abi/4.0>,
include <tunables/global>

profile %s %s flags=(unconfined) {
  userns,

  include if exists <local/%s>
}
EOF
apparmor_parser -r %s`, file, name, bin, name, file)
}

// profile is one top-level AppArmor profile block.
type profile struct {
	file    string
	line    int
	attach  []string
	userns  string // "file:line" of a granting rule, "" if none
	include []string
}

type profileSet struct {
	list    []*profile
	scanned int
}

func (s *profileSet) forBinary(bin string) *profile {
	var best *profile
	for _, p := range s.list {
		for _, a := range p.attach {
			if attachMatches(a, bin) {
				if p.userns != "" {
					return p
				}
				best = p
			}
		}
	}
	return best
}

// loadProfiles reads the top-level profiles in /etc/apparmor.d, minus
// those disabled through /etc/apparmor.d/disable. It understands the
// forms profiles for a single binary use, not the whole policy language.
// Files named after rootlesskit are read first; the other hundred or so
// profiles of an Ubuntu host only when those do not cover every binary.
func loadProfiles(env *checks.Env, bins []string) *profileSet {
	s := &profileSet{}
	ents, err := env.Host.ReadDir(apparmorDir)
	if err != nil {
		return s
	}
	var named, rest []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") ||
			strings.Contains(n, ".dpkg-") || strings.Contains(n, ".rpm") || n == "README" {
			continue
		}
		if strings.Contains(n, "rootlesskit") {
			named = append(named, n)
		} else {
			rest = append(rest, n)
		}
	}
	s.read(env, named)
	for _, bin := range bins {
		if p := s.forBinary(bin); p == nil || p.userns == "" {
			s.read(env, rest)
			break
		}
	}
	return s
}

func (s *profileSet) read(env *checks.Env, names []string) {
	for _, n := range names {
		if env.Host.Exists(path.Join(apparmorDir, "disable", n)) {
			continue
		}
		file := path.Join(apparmorDir, n)
		b, err := env.Host.ReadFile(file)
		if err != nil {
			continue
		}
		s.scanned++
		for _, p := range parseProfiles(b, file) {
			for _, inc := range p.include {
				if p.userns != "" {
					break
				}
				if ib, err := env.Host.ReadFile(path.Join(apparmorDir, inc)); err == nil {
					if _, at := usernsRule(ib, path.Join(apparmorDir, inc)); at != "" {
						p.userns = at
					}
				}
			}
			s.list = append(s.list, p)
		}
	}
}

var (
	usernsRe  = regexp.MustCompile(`^(audit\s+)?(allow\s+)?userns(\s+create)?\s*,`)
	includeRe = regexp.MustCompile(`^#?include(\s+if\s+exists)?\s+<([^>]+)>`)
)

func parseProfiles(b []byte, file string) []*profile {
	var out []*profile
	var cur *profile
	depth := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if m := includeRe.FindStringSubmatch(line); m != nil {
			if cur != nil {
				cur.include = append(cur.include, m[2])
			}
			continue
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if cur != nil && usernsRe.MatchString(line) && cur.userns == "" {
			cur.userns = errs.At(file, n).String()
		}
		opens, closes := strings.Count(line, "{"), strings.Count(line, "}")
		if depth == 0 && opens > closes && strings.HasSuffix(line, "{") {
			cur = &profile{file: file, line: n, attach: attachments(line)}
			out = append(out, cur)
		}
		depth += opens - closes
		if depth <= 0 {
			depth, cur = 0, nil
		}
	}
	return out
}

// usernsRule finds a granting rule anywhere in an included file.
func usernsRule(b []byte, file string) (bool, string) {
	for i, l := range strings.Split(string(b), "\n") {
		if usernsRe.MatchString(strings.TrimSpace(l)) {
			return true, errs.At(file, i+1).String()
		}
	}
	return false, ""
}

// attachments are the absolute paths in a profile header:
// `profile name /usr/bin/x flags=(unconfined) {` or `"/home/u/bin/x" {`.
func attachments(header string) []string {
	var out []string
	for _, f := range strings.Fields(strings.TrimSuffix(header, "{")) {
		f = strings.Trim(f, `"`)
		if strings.HasPrefix(f, "/") {
			out = append(out, f)
		}
	}
	return out
}

// attachMatches matches an attachment pattern against a path: literal
// paths, "*" within a name, "**" across names and {a,b} alternations.
func attachMatches(pattern, p string) bool {
	if pattern == p {
		return true
	}
	if i := strings.IndexByte(pattern, '{'); i >= 0 {
		if j := strings.IndexByte(pattern[i:], '}'); j > 0 {
			for _, alt := range strings.Split(pattern[i+1:i+j], ",") {
				if attachMatches(pattern[:i]+alt+pattern[i+j+1:], p) {
					return true
				}
			}
			return false
		}
	}
	if strings.Contains(pattern, "**") {
		re := regexp.QuoteMeta(pattern)
		re = strings.ReplaceAll(re, `\*\*`, `.*`)
		re = strings.ReplaceAll(re, `\*`, `[^/]*`)
		ok, _ := regexp.MatchString("^"+re+"$", p)
		return ok
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

// --- newuidmap / newgidmap ---------------------------------------------

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
