package sysctl

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/errs"
)

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
