package host

import (
	"os"
	"path/filepath"
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
