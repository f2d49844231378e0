package hosttree

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTreeForms(t *testing.T) {
	root := Tree(t, map[string]string{
		"/etc/subuid":     "alice:100000:65536\n",
		"etc/relative":    "no leading slash",
		"/etc/sysctl.d/":  "",
		"/etc/subuid.d":   Dir,
		"/lib":            Link + "usr/lib",
		"/usr/lib/x":      "x",
		"/etc/abs":        Link + "/etc/subuid",
		"/../escape/file": "stays inside",
	})
	for p, want := range map[string]os.FileMode{
		"etc/subuid": 0, "etc/relative": 0, "etc/sysctl.d": os.ModeDir, "etc/subuid.d": os.ModeDir,
		"lib": os.ModeSymlink, "etc/abs": os.ModeSymlink, "escape/file": 0,
	} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != want {
			t.Errorf("%s: type %v, want %v", p, fi.Mode().Type(), want)
		}
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/subuid")); fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v", fi.Mode())
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(root), "escape")); err == nil {
		t.Error("a .. key climbed out of the tree")
	}

	// Links resolve inside the tree through the seam, absolute ones too.
	h := Host(t, map[string]string{"/etc/subuid": "a:1:2\n", "/etc/abs": Link + "/etc/subuid", "/lib": Link + "usr/lib", "/usr/lib/x": "x"})
	for p, want := range map[string]string{"/etc/abs": "a:1:2\n", "/lib/x": "x"} {
		if b, err := h.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", p, b, err, want)
		}
	}
}
