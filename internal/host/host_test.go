package host

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// In a snapshot tree, no symlink can lead a read out of the tree: not an
// absolute one, not one that climbs with "..".
func TestTreeReadsStayInside(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret\n"), 0o600)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "etc", "abs"))
	os.Symlink("../../../../../../../../"+outside+"/secret", filepath.Join(dir, "etc", "climb"))
	os.Symlink(outside, filepath.Join(dir, "etc", "dirlink"))
	os.WriteFile(filepath.Join(dir, "etc", "real"), []byte("inside\n"), 0o644)
	os.Symlink("real", filepath.Join(dir, "etc", "rel"))
	h, err := At(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/abs", "/etc/climb", "/etc/dirlink/secret"} {
		if b, err := h.ReadFile(p); err == nil {
			t.Errorf("%s read %q from outside the tree", p, b)
		}
		if _, err := h.Stat(p); err == nil {
			t.Errorf("%s stat succeeded outside the tree", p)
		}
	}
	if m, _ := h.Glob("/etc/dirlink/*"); len(m) != 0 {
		t.Errorf("glob through a link out of the tree: %v", m)
	}
	// An absolute link means the tree's own path, as it would on the host.
	os.Symlink("/etc/real", filepath.Join(dir, "etc", "absinside"))
	if b, err := h.ReadFile("/etc/absinside"); err != nil || string(b) != "inside\n" {
		t.Errorf("an absolute link inside the tree: %q %v", b, err)
	}
	if b, err := h.ReadFile("/etc/rel"); err != nil || string(b) != "inside\n" {
		t.Errorf("a link inside the tree: %q %v", b, err)
	}
	if _, err := h.ReadFile("/../../etc/real"); err != nil {
		t.Errorf("dot-dot in a host path stays at the root: %v", err)
	}
}

// A tree's StatFile gives the mode and owner a checkout cannot keep.
func TestStatMeta(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"home/alice/docker", ".usernsctl"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "usr-newuidmap"), nil, 0o644)
	os.Symlink("home", filepath.Join(dir, "h"))
	meta := `{"/home/alice": {"mode": "0750", "uid": 1000, "gid": 1001}, "usr-newuidmap": {"mode": "4755", "uid": 0}, "/h": {"mode": "0700"}}`
	if err := os.WriteFile(filepath.Join(dir, ".usernsctl/stat.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := At(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := h.Stat("/home/alice")
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != fs.ModeDir|0o750 || !fi.IsDir() || st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o750 {
		t.Errorf("/home/alice: %v %d:%d %o", fi.Mode(), st.Uid, st.Gid, st.Mode)
	}
	fi, _ = h.Stat("/usr-newuidmap")
	if fi.Mode() != fs.ModeSetuid|0o755 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("setuid file: %v", fi.Mode())
	}
	// A link itself keeps its kind; what it points to is keyed by its own path.
	if fi, _ := h.Lstat("/h"); fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat of a link: %v", fi.Mode())
	}
	if fi, _ := h.Stat("/home/alice/docker"); fi.Mode().Perm() != 0o755 {
		t.Errorf("an unrecorded path: %v", fi.Mode())
	}
	os.WriteFile(filepath.Join(dir, ".usernsctl/stat.json"), []byte(`{"/x": {"mode": "rwx"}}`), 0o644)
	if _, err := At(dir); err == nil || !strings.Contains(err.Error(), "not octal") {
		t.Errorf("bad mode: %v", err)
	}
}
