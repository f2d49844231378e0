package host

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestXattr(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "usr/bin/newuidmap")
	if err := os.WriteFile(f, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := []byte("value seen through the seam")
	if err := unix.Lsetxattr(f, "user.usernsctl", want, 0); err != nil {
		t.Skipf("the test directory's filesystem keeps no user xattrs: %v", err)
	}
	h, err := At(dir)
	if err != nil {
		t.Fatal(err)
	}
	h.Record()

	got, ok, err := h.Xattr("/usr/bin/newuidmap", "user.usernsctl")
	if err != nil || !ok || string(got) != string(want) {
		t.Fatalf("Xattr = %q, %v, %v", got, ok, err)
	}
	if _, ok, err := h.Xattr("/usr/bin/newuidmap", "user.absent"); ok || err != nil {
		t.Errorf("absent attribute: ok=%v err=%v", ok, err)
	}
	_, _, err = h.Xattr("/usr/bin/missing", "user.usernsctl")
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/usr/bin/missing" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v (want an error naming the host path)", err)
	}
	if a := h.Recorded()["/usr/bin/newuidmap"]; a != Stat {
		t.Errorf("xattr read recorded as %v, want Stat", a)
	}
}

// In a tree, an xattr read resolves inside the tree too: a link that
// leaves it reaches nothing outside.
func TestXattrStaysInTree(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "f")
	os.WriteFile(secret, nil, 0o644)
	if err := unix.Setxattr(secret, "user.usernsctl", []byte("outside"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	dir := t.TempDir()
	os.Symlink(outside, filepath.Join(dir, "out"))
	h, err := At(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := h.Xattr("/out/f", "user.usernsctl"); ok {
		t.Errorf("read %q through a link out of the tree", v)
	}
	inside := filepath.Join(dir, "in")
	os.WriteFile(inside, nil, 0o644)
	unix.Setxattr(inside, "user.usernsctl", []byte("inside"), 0)
	os.Symlink("/in", filepath.Join(dir, "abs"))
	if v, ok, err := h.Xattr("/in", "user.usernsctl"); !ok || string(v) != "inside" {
		t.Errorf("inside: %q %v %v", v, ok, err)
	}
}
