package rootless

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

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
		want      checkstest.Want
	}{
		{"missing on Debian", "/usr/bin", nil, nil, "ID=debian\n", false,
			checkstest.Want{Status: checks.Fail, Msg: []string{"newuidmap and newgidmap not found in /usr/bin, /bin, /usr/sbin", "cannot map more than one id"}, Remedy: []string{"apt-get install uidmap"}}},
		{"missing on Rocky", "/usr/bin", nil, nil, "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", false,
			checkstest.Want{Status: checks.Fail, Remedy: []string{"dnf install shadow-utils"}}},
		{"setuid root (Debian uidmap)", "/usr/bin", &setuidRoot, &setuidRoot, "", true,
			checkstest.Want{Status: checks.Pass, Msg: []string{"/usr/bin/newuidmap is setuid root", "/usr/bin/newgidmap is setuid root"}}},
		{"file capabilities (Fedora)", "/usr/bin", ptr(withCaps(capBytes(2, true, 1<<unix.CAP_SETUID, 0))), ptr(withCaps(capBytes(2, true, 1<<unix.CAP_SETGID, 0))), "", true,
			checkstest.Want{Status: checks.Pass, Msg: []string{"newuidmap is given file capability cap_setuid+ep", "newgidmap is given file capability cap_setgid+ep"}}},
		{"caps for the wrong id", "/usr/sbin", ptr(withCaps(capBytes(2, true, 1<<unix.CAP_SETGID, 0))), &setuidRoot, "", true,
			checkstest.Want{Status: checks.Fail, Msg: []string{"/usr/sbin/newuidmap has file capabilities without cap_setuid"}, Remedy: []string{"setcap cap_setuid+ep /usr/sbin/newuidmap"}}},
		{"permitted, not effective", "/usr/bin", ptr(withCaps(capBytes(2, false, 1<<unix.CAP_SETUID, 0))), &setuidRoot, "", true,
			checkstest.Want{Status: checks.Fail, Msg: []string{"not effective"}}},
		{"namespaced caps", "/usr/bin", ptr(withCaps(capBytes(3, true, 1<<unix.CAP_SETUID, 100000))), &setuidRoot, "", true,
			checkstest.Want{Status: checks.Fail, Msg: []string{"rooted at uid 100000"}}},
		{"neither", "/bin", &plain, &plain, "", false,
			checkstest.Want{Status: checks.Fail, Msg: []string{"/bin/newuidmap is neither setuid root nor given file capabilities", "/bin/newgidmap"},
				Remedy: []string{"chmod u+s /bin/newuidmap", "setcap cap_setgid+ep /bin/newgidmap"}}},
		{"one missing, one plain", "/bin", &plain, nil, "ID=ubuntu\n", false,
			checkstest.Want{Status: checks.Fail, Msg: []string{"newgidmap not found", "/bin/newuidmap is neither"}, Remedy: []string{"apt-get install uidmap"}}},
		{"setuid but not root's", "/usr/bin", &tool{mode: 0o755 | os.ModeSetuid, owner: 1000}, &setuidRoot, "", true,
			checkstest.Want{Status: checks.Fail, Msg: []string{"owned by uid 1000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needRoot && !root {
				t.Skip("needs root: setuid-root files and security.capability xattrs")
			}
			files := checkstest.Files{}
			if tt.osRelease != "" {
				files["/etc/os-release"] = tt.osRelease
			}
			env := checkstest.Setup{Files: files, Target: checks.Rootless}.Env(t)
			for name, tl := range map[string]*tool{"newuidmap": tt.uid, "newgidmap": tt.gid} {
				if tl != nil {
					makeTool(t, env.Host.Path(filepath.Join(tt.dir, name)), *tl)
				}
			}
			tt.want.Assert(t, runCheck(t, env, "rootless.newidmap"))
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
	env := checkstest.Setup{Target: checks.Rootless}.Env(t)
	for name, c := range map[string]string{"newuidmap": "cap_setuid=ep", "newgidmap": "cap_setgid=ep"} {
		p := env.Host.Path("/usr/bin/" + name)
		makeTool(t, p, tool{mode: 0o755, owner: -1})
		if out, err := exec.Command(setcap, c, p).CombinedOutput(); err != nil {
			t.Skipf("setcap %s: %v: %s", c, err, out)
		}
	}
	checkstest.Want{Status: checks.Pass, Msg: []string{"cap_setuid+ep", "cap_setgid+ep"}}.Assert(t, runCheck(t, env, "rootless.newidmap"))
}
