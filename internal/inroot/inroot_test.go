package inroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// both runs f with openat2 and with the user-space walk.
func both(t *testing.T, f func(t *testing.T)) {
	t.Run("openat2", func(t *testing.T) { f(t) })
	t.Run("walk", func(t *testing.T) {
		forceWalk = true
		defer func() { forceWalk = false }()
		f(t)
	})
}

// tree builds DIR with etc/ and symlinks that try to leave DIR, and an
// outside directory they point at.
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{root + "/etc/real", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"etc/abs":   outside,                           // absolute, outside the tree
		"etc/rel":   "../../../../../../../../outside", // climbs past the root
		"etc/loop":  "loop",
		"etc/inner": "/etc/real", // absolute, meant relative to the root
		"etc/up":    "../etc/real",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

func open(t *testing.T, root string) *Root {
	t.Helper()
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// sameDir reports whether f is the directory at real path p.
func sameDir(t *testing.T, f *os.File, p string) bool {
	t.Helper()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(p, &b); err != nil {
		t.Fatal(err)
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func TestSymlinksStayInRoot(t *testing.T) {
	both(t, func(t *testing.T) {
		root, outside := tree(t)
		r := open(t, root)

		// Links meant relative to the root resolve inside it.
		for _, p := range []string{"/etc/inner", "/etc/up", "/../../etc/real", "/etc/real/../../etc/real"} {
			f, err := r.OpenDir(p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if !sameDir(t, f, filepath.Join(root, "etc/real")) {
				t.Errorf("%s did not resolve to DIR/etc/real", p)
			}
			f.Close()
		}

		// Links to the outside directory resolve to DIR/<that path>,
		// which does not exist: never to the real outside directory.
		for _, p := range []string{"/etc/abs", "/etc/rel"} {
			_, err := r.OpenDir(p)
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: got %v, want not-exist (in-root resolution)", p, err)
			}
		}
		if _, err := r.MkdirAll("/etc/abs/conf.d", 0o755); err == nil {
			t.Error("MkdirAll through a dangling in-root link succeeded")
		}
		if _, err := r.MkdirAll("/etc/rel/conf.d", 0o755); err == nil {
			t.Error("MkdirAll through a dangling in-root link succeeded")
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("something was created outside the root: %v", ents)
		}

		// Once the link's target exists inside the root, it is used.
		inside := filepath.Join(root, outside)
		if err := os.MkdirAll(inside, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "outside"), 0o755); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]string{"/etc/abs": inside, "/etc/rel": filepath.Join(root, "outside")} {
			f, err := r.OpenDir(p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if !sameDir(t, f, want) {
				t.Errorf("%s did not resolve to %s", p, want)
			}
			f.Close()
		}
	})
}

func TestErrors(t *testing.T) {
	both(t, func(t *testing.T) {
		root, _ := tree(t)
		r := open(t, root)
		if _, err := r.OpenDir("/etc/loop"); !errors.Is(err, unix.ELOOP) {
			t.Errorf("loop: %v", err)
		}
		if _, err := r.OpenDir("/etc/file/x"); !errors.Is(err, unix.ENOTDIR) {
			t.Errorf("file component: %v", err)
		}
		_, err := r.OpenDir("/etc/missing")
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != "/etc/missing" {
			t.Errorf("error should name the host path: %v", err)
		}
	})
}

func TestMkdirAllAndRemove(t *testing.T) {
	both(t, func(t *testing.T) {
		root, _ := tree(t)
		r := open(t, root)
		old := unix.Umask(0o077)
		defer unix.Umask(old)
		created, err := r.MkdirAll("/etc/containerd/conf.d", 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if len(created) != 2 || created[0] != "/etc/containerd" || created[1] != "/etc/containerd/conf.d" {
			t.Fatalf("created %v", created)
		}
		fi, err := os.Stat(filepath.Join(root, "etc/containerd/conf.d"))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("mode %v (umask must not apply): %v", fi.Mode(), err)
		}
		again, err := r.MkdirAll("/etc/containerd/conf.d", 0o755)
		if err != nil || len(again) != 0 {
			t.Fatalf("second MkdirAll: %v %v", again, err)
		}
		// Through an in-root link: created where the link points.
		created, err = r.MkdirAll("/etc/inner/sub", 0o700)
		if err != nil || len(created) != 1 {
			t.Fatalf("%v %v", created, err)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/real/sub")); err != nil {
			t.Fatal(err)
		}

		if err := os.WriteFile(filepath.Join(root, "etc/containerd/conf.d/x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if ok, err := r.RemoveEmptyDir("/etc/containerd/conf.d"); ok || err != nil {
			t.Fatalf("removed a non-empty dir: %v %v", ok, err)
		}
		os.Remove(filepath.Join(root, "etc/containerd/conf.d/x"))
		for _, d := range []string{"/etc/containerd/conf.d", "/etc/containerd"} {
			if ok, err := r.RemoveEmptyDir(d); !ok || err != nil {
				t.Fatalf("%s: %v %v", d, ok, err)
			}
		}
		if ok, err := r.RemoveEmptyDir("/etc/containerd"); ok || err != nil {
			t.Fatalf("missing dir: %v %v", ok, err)
		}
	})
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{"/etc/subuid": "/etc/subuid", "/etc//x/../subgid": "/etc/subgid", "/../etc/a": "/etc/a"} {
		if got, err := Clean(in); err != nil || got != want {
			t.Errorf("Clean(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "etc/subuid", "/", "/.."} {
		if _, err := Clean(bad); err == nil {
			t.Errorf("Clean(%q) accepted", bad)
		}
	}
}
