// Package hosttree writes host trees for tests: files, directories and
// symlinks under a temporary directory, laid out as host paths, and the
// host seam that reads them. Only tests import it.
package hosttree

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/host"
)

// Dir is the content that makes an entry a directory (as does a key that
// ends in "/"); a content starting with Link makes a symlink to the rest.
const (
	Dir  = "<dir>"
	Link = "-> "
)

// Tree writes files under a fresh temporary directory and returns it.
// Keys are host paths ("/etc/subuid"; the leading "/" is optional and ".."
// cannot climb out of the tree); values are written by Write.
func Tree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		Write(t, root, p, content)
	}
	return root
}

// Write puts one entry at host path p under root, creating parents: a
// directory when p ends in "/" or content is Dir, a symlink when content
// is Link+target (the target is kept as written, so "-> /x" is absolute
// inside the tree), else a file with mode 0644 holding content.
func Write(t testing.TB, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, filepath.FromSlash(path.Clean("/"+p)))
	var err error
	switch {
	case strings.HasSuffix(p, "/") || content == Dir:
		err = os.MkdirAll(full, 0o755)
	case strings.HasPrefix(content, Link):
		if err = os.MkdirAll(filepath.Dir(full), 0o755); err == nil {
			err = os.Symlink(strings.TrimPrefix(content, Link), full)
		}
	default:
		if err = os.MkdirAll(filepath.Dir(full), 0o755); err == nil {
			err = os.WriteFile(full, []byte(content), 0o644)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Host is the seam for Tree(t, files).
func Host(t testing.TB, files map[string]string) *host.Host {
	t.Helper()
	h, err := host.At(Tree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Copy copies the tree at src (a fixture) into a fresh temporary
// directory, links kept as links, so that a test may write to it.
func Copy(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "host")
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(to, fi.Mode().Perm()|0o700)
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, to)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
