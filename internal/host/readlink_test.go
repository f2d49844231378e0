package host

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestReadlink(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "proc/7/ns"), 0o755)
	// A recorded namespace link dangles: only its text matters.
	if err := os.Symlink("user:[4026531837]", filepath.Join(dir, "proc/7/ns/user")); err != nil {
		t.Fatal(err)
	}
	h, err := At(dir)
	if err != nil {
		t.Fatal(err)
	}
	h.Record()
	if got, err := h.Readlink("/proc/7/ns/user"); err != nil || got != "user:[4026531837]" {
		t.Errorf("Readlink = %q, %v", got, err)
	}
	if h.Recorded()["/proc/7/ns/user"] != Stat {
		t.Error("a readlink is not recorded")
	}
	_, err = h.Readlink("/proc/8/ns/user")
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/proc/8/ns/user" {
		t.Errorf("missing link: %v (want the host path)", err)
	}
}
