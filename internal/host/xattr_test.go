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
