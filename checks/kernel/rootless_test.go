package kernel

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/checks"
)

const restrictKnob = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"

// Ubuntu 24.04's /etc/apparmor.d/rootlesskit.
const ubuntuRootlesskitProfile = `# This profile allows everything and only exists to give the
# application a name instead of having the label "unconfined"

abi <abi/4.0>,
include <tunables/global>

profile rootlesskit /usr/bin/rootlesskit flags=(unconfined) {
  userns,

  # Site-specific additions and overrides. See local/README for details.
  include if exists <local/rootlesskit>
}
`

func TestAppArmorUserns(t *testing.T) {
	withoutUserns := strings.Replace(ubuntuRootlesskitProfile, "  userns,\n", "", 1)
	tests := []struct {
		name  string
		files hostTree
		want  expect
	}{
		{"no such knob", hostTree{}, expect{status: checks.Skip, msg: []string{restrictKnob}}},
		{"not restricted", hostTree{restrictKnob: "0\n"}, expect{status: checks.Pass}},
		{"Ubuntu 24.04 with the stock profile", hostTree{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": ubuntuRootlesskitProfile, "/etc/apparmor.d/firefox": "profile firefox /usr/lib/firefox/firefox{,*[^s][^h]} flags=(unconfined) {\n  userns,\n}\n"},
			expect{status: checks.Pass, msg: []string{"/usr/bin/rootlesskit (profile /etc/apparmor.d/rootlesskit line 7, `userns,` at /etc/apparmor.d/rootlesskit:8)"}}},
		{"userns granted in local/", hostTree{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": withoutUserns, "/etc/apparmor.d/local/rootlesskit": "# local\nuserns,\n"},
			expect{status: checks.Pass, msg: []string{"/etc/apparmor.d/local/rootlesskit:2"}}},
		{"static install in /usr/local/bin", hostTree{restrictKnob: "1\n", "/usr/local/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": ubuntuRootlesskitProfile},
			expect{status: checks.Fail, msg: []string{"/usr/local/bin/rootlesskit (no profile attaches to it)", "Permission denied"},
				remedy: []string{"cat > /etc/apparmor.d/usr.local.bin.rootlesskit <<'EOF'", "profile usr.local.bin.rootlesskit /usr/local/bin/rootlesskit flags=(unconfined) {\n  userns,", "apparmor_parser -r /etc/apparmor.d/usr.local.bin.rootlesskit"}}},
		{"profile without userns", hostTree{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin", "/etc/apparmor.d/rootlesskit": withoutUserns},
			expect{status: checks.Fail, msg: []string{"profile /etc/apparmor.d/rootlesskit line 7 has no `userns,` rule"},
				remedy: []string{"add the line `  userns,` inside the profile at /etc/apparmor.d/rootlesskit line 7"}}},
		{"deny userns does not grant", hostTree{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": strings.Replace(ubuntuRootlesskitProfile, "  userns,", "  deny userns,", 1)},
			expect{status: checks.Fail}},
		{"disabled profile", hostTree{restrictKnob: "1\n", "/usr/bin/rootlesskit": "bin",
			"/etc/apparmor.d/rootlesskit": ubuntuRootlesskitProfile, "/etc/apparmor.d/disable/rootlesskit": "-> ../rootlesskit"},
			expect{status: checks.Fail, msg: []string{"no profile attaches"}}},
		{"not installed yet", hostTree{restrictKnob: "1\n"},
			expect{status: checks.Fail, msg: []string{"not installed yet"}, remedy: []string{"/etc/apparmor.d/usr.bin.rootlesskit"}}},
		{"AppArmor disabled", hostTree{restrictKnob: "1\n", "/sys/module/apparmor/parameters/enabled": "N\n"},
			expect{status: checks.Pass, msg: []string{"AppArmor is disabled"}}},
		{"off now, on after boot", hostTree{restrictKnob: "0\n", "/etc/sysctl.d/20-apparmor.conf": "kernel.apparmor_restrict_unprivileged_userns = 1\n"},
			expect{status: checks.Warn, msg: []string{"/etc/sysctl.d/20-apparmor.conf:1 persists 1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheck(t, setup{files: tt.files, target: checks.Rootless}.env(t), "sysctl.apparmor_userns")
			tt.want.assert(t, r)
			if r.Status == checks.Fail && !strings.Contains(r.Remedy, "setting the sysctl to 0 lifts the protection") {
				t.Errorf("remedy does not warn off the global flip: %s", r.Remedy)
			}
		})
	}
}

func TestAttachMatches(t *testing.T) {
	for _, tt := range []struct {
		pattern, path string
		want          bool
	}{
		{"/usr/bin/rootlesskit", "/usr/bin/rootlesskit", true},
		{"/usr/{bin,sbin}/rootlesskit", "/usr/sbin/rootlesskit", true},
		{"/usr/{bin,sbin}/rootlesskit", "/usr/lib/rootlesskit", false},
		{"/opt/*/rootlesskit", "/opt/docker/rootlesskit", true},
		{"/opt/*/rootlesskit", "/opt/a/b/rootlesskit", false},
		{"/opt/**/rootlesskit", "/opt/a/b/rootlesskit", true},
		{"/usr/bin/rootlesskit", "/usr/local/bin/rootlesskit", false},
	} {
		if got := attachMatches(tt.pattern, tt.path); got != tt.want {
			t.Errorf("attachMatches(%q, %q) = %v", tt.pattern, tt.path, got)
		}
	}
}

// capBytes builds a security.capability value the way the kernel lays it
// out (struct vfs_cap_data, little endian).
func capBytes(revision int, effective bool, permitted uint64, rootID uint32) []byte {
	magic := uint32(revision) << 24
	if effective {
		magic |= 1
	}
	size := map[int]int{1: 12, 2: 20, 3: 24}[revision]
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b, magic)
	le.PutUint32(b[4:], uint32(permitted))
	if revision >= 2 {
		le.PutUint32(b[12:], uint32(permitted>>32))
	}
	if revision == 3 {
		le.PutUint32(b[20:], rootID)
	}
	return b
}

func TestDecodeCaps(t *testing.T) {
	setuid := uint64(1) << unix.CAP_SETUID
	c, err := decodeCaps(capBytes(2, true, setuid|1<<40, 0))
	if err != nil || !c.has(unix.CAP_SETUID) || c.has(unix.CAP_SETGID) || !c.effective || !c.has(40) || c.revision != 2 {
		t.Errorf("v2: %+v %v", c, err)
	}
	if c, err := decodeCaps(capBytes(1, false, setuid, 0)); err != nil || !c.has(unix.CAP_SETUID) || c.effective {
		t.Errorf("v1: %+v %v", c, err)
	}
	if c, err := decodeCaps(capBytes(3, true, setuid, 1000)); err != nil || c.rootID != 1000 {
		t.Errorf("v3: %+v %v", c, err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short v2":  capBytes(2, true, setuid, 0)[:12],
		"revision9": {0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		if _, err := decodeCaps(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNewIDMap(t *testing.T) {
	root := os.Getuid() == 0
	setuidRoot := tool{mode: 0o755 | os.ModeSetuid, owner: 0}
	plain := tool{mode: 0o755, owner: -1}
	withCaps := func(b []byte) tool { return tool{mode: 0o755, owner: -1, caps: b} }
	tests := []struct {
		name      string
		dir       string
		uid, gid  *tool
		osRelease string
		needRoot  bool
		want      expect
	}{
		{"missing on Debian", "/usr/bin", nil, nil, "ID=debian\n", false,
			expect{status: checks.Fail, msg: []string{"newuidmap and newgidmap not found in /usr/bin, /bin, /usr/sbin", "cannot map more than one id"}, remedy: []string{"apt-get install uidmap"}}},
		{"missing on Rocky", "/usr/bin", nil, nil, "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", false,
			expect{status: checks.Fail, remedy: []string{"dnf install shadow-utils"}}},
		{"setuid root (Debian uidmap)", "/usr/bin", &setuidRoot, &setuidRoot, "", true,
			expect{status: checks.Pass, msg: []string{"/usr/bin/newuidmap is setuid root", "/usr/bin/newgidmap is setuid root"}}},
		{"file capabilities (Fedora)", "/usr/bin", ptr(withCaps(capBytes(2, true, 1<<unix.CAP_SETUID, 0))), ptr(withCaps(capBytes(2, true, 1<<unix.CAP_SETGID, 0))), "", true,
			expect{status: checks.Pass, msg: []string{"newuidmap is given file capability cap_setuid+ep", "newgidmap is given file capability cap_setgid+ep"}}},
		{"caps for the wrong id", "/usr/sbin", ptr(withCaps(capBytes(2, true, 1<<unix.CAP_SETGID, 0))), &setuidRoot, "", true,
			expect{status: checks.Fail, msg: []string{"/usr/sbin/newuidmap has file capabilities without cap_setuid"}, remedy: []string{"setcap cap_setuid+ep /usr/sbin/newuidmap"}}},
		{"permitted, not effective", "/usr/bin", ptr(withCaps(capBytes(2, false, 1<<unix.CAP_SETUID, 0))), &setuidRoot, "", true,
			expect{status: checks.Fail, msg: []string{"not effective"}}},
		{"namespaced caps", "/usr/bin", ptr(withCaps(capBytes(3, true, 1<<unix.CAP_SETUID, 100000))), &setuidRoot, "", true,
			expect{status: checks.Fail, msg: []string{"rooted at uid 100000"}}},
		{"neither", "/bin", &plain, &plain, "", false,
			expect{status: checks.Fail, msg: []string{"/bin/newuidmap is neither setuid root nor given file capabilities", "/bin/newgidmap"},
				remedy: []string{"chmod u+s /bin/newuidmap", "setcap cap_setgid+ep /bin/newgidmap"}}},
		{"one missing, one plain", "/bin", &plain, nil, "ID=ubuntu\n", false,
			expect{status: checks.Fail, msg: []string{"newgidmap not found", "/bin/newuidmap is neither"}, remedy: []string{"apt-get install uidmap"}}},
		{"setuid but not root's", "/usr/bin", &tool{mode: 0o755 | os.ModeSetuid, owner: 1000}, &setuidRoot, "", true,
			expect{status: checks.Fail, msg: []string{"owned by uid 1000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needRoot && !root {
				t.Skip("needs root: setuid-root files and security.capability xattrs")
			}
			files := hostTree{}
			if tt.osRelease != "" {
				files["/etc/os-release"] = tt.osRelease
			}
			env := setup{files: files, target: checks.Rootless}.env(t)
			for name, tl := range map[string]*tool{"newuidmap": tt.uid, "newgidmap": tt.gid} {
				if tl != nil {
					makeTool(t, env.Host.Path(filepath.Join(tt.dir, name)), *tl)
				}
			}
			tt.want.assert(t, runCheck(t, env, "rootless.newidmap"))
		})
	}
}

func ptr[T any](v T) *T { return &v }

// tool is a newuidmap/newgidmap stand-in.
type tool struct {
	mode  os.FileMode
	owner int    // -1 = leave as created
	caps  []byte // security.capability, nil for none
}

func makeTool(t *testing.T, p string, tl tool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if tl.owner >= 0 {
		if err := os.Chown(p, tl.owner, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(p, tl.mode); err != nil {
		t.Fatal(err)
	}
	if tl.caps != nil {
		if err := unix.Lsetxattr(p, "security.capability", tl.caps, 0); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) {
				t.Skipf("cannot set file capabilities here: %v", err)
			}
			t.Fatal(err)
		}
	}
}

// TestNewIDMapRealSetcap cross-checks the decoder against libcap's own
// encoding, as Fedora's packages apply it.
func TestNewIDMapRealSetcap(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to set file capabilities")
	}
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Skip("setcap (libcap2-bin) is not installed")
	}
	env := setup{target: checks.Rootless}.env(t)
	for name, c := range map[string]string{"newuidmap": "cap_setuid=ep", "newgidmap": "cap_setgid=ep"} {
		p := env.Host.Path("/usr/bin/" + name)
		makeTool(t, p, tool{mode: 0o755, owner: -1})
		if out, err := exec.Command(setcap, c, p).CombinedOutput(); err != nil {
			t.Skipf("setcap %s: %v: %s", c, err, out)
		}
	}
	expect{status: checks.Pass, msg: []string{"cap_setuid+ep", "cap_setgid+ep"}}.assert(t, runCheck(t, env, "rootless.newidmap"))
}
