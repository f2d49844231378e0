package containerd

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/errs"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lineOf returns the 1-based line of the first line containing s.
func lineOf(t *testing.T, data []byte, s string) int {
	t.Helper()
	for i, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in data", s)
	return 0
}

func TestParseRealDefaults(t *testing.T) {
	for _, tc := range []struct {
		file    string
		version int
		overlay string // the overlayfs table header as written
	}{
		{"default-1.6.20.toml", 2, `[plugins."io.containerd.snapshotter.v1.overlayfs"]`},
		{"default-1.7.24.toml", 2, `[plugins."io.containerd.snapshotter.v1.overlayfs"]`},
		{"default-2.1.9.toml", 3, `[plugins.'io.containerd.snapshotter.v1.overlayfs']`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data := readTestdata(t, tc.file)
			f, err := Parse(bytes.NewReader(data), "/etc/containerd/config.toml")
			if err != nil {
				t.Fatal(err)
			}
			if f.Version != tc.version {
				t.Errorf("version %d, want %d", f.Version, tc.version)
			}
			if len(f.Imports) != 0 {
				t.Errorf("imports %q, want none", f.Imports)
			}
			p, ok := f.Where("plugins", PluginOverlayfs)
			// The position of a table is that of its header's first key.
			if want := lineOf(t, data, tc.overlay); !ok || p.Line != want || p.Column != len("  [")+1 {
				t.Errorf("overlayfs table at %+v (found %v), want line %d", p, ok, want)
			}
			if p, ok := f.Where("version"); !ok || p.Line != lineOf(t, data, "version = ") || p.Column != 1 {
				t.Errorf("version at %+v", p)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		line, col int
		msg       string
	}{
		{"missing equals", "version = 2\n\n[plugins]\n  foo bar\n", 4, 7, "expected '=' after key"},
		{"table twice", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  x = 1\n[plugins.\"io.containerd.grpc.v1.cri\"]\n", 4, 2, "already exists"},
		{"key twice", "version = 2\nversion = 3\n", 2, 1, "already defined"},
		{"binary", "\x7fELF\x02\x01\x01\x00\x00\x00", 1, 1, "invalid character"},
		{"invalid utf-8", "version = 2\nroot = \"/var/lib/\xff\"\n", 2, 18, "invalid UTF-8"},
		{"nul byte", "version = 2\x00\n", 1, 12, "U+0000"},
		{"3 MB line", strings.Repeat("x", 3<<20) + "\n", 1, 3<<20 + 1, "expected '='"},
		{"10 MB line", strings.Repeat("x", 10<<20) + "\n", 0, 0, "larger than 4 MiB"},
		{"version a string", "version = \"2\"\n", 1, 1, "version must be an integer, not the string \"2\""},
		{"imports a string", "version = 2\nimports = \"/etc/containerd/conf.d\"\n", 2, 1, "imports must be an array"},
		{"imports numbers", "version = 2\nimports = [1]\n", 2, 1, "imports must be an array of strings"},
		{"root a number", "version = 2\nroot = 1\n", 2, 1, "root must be a string"},
		{"plugins a string", "version = 2\nplugins = \"x\"\n", 2, 1, "plugins must be a table"},
		{"too large", strings.Repeat("#", MaxSize+1), 0, 0, "larger than 4 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in), "/etc/containerd/config.toml")
			var se *errs.Input
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *errs.Input", err, err)
			}
			if se.File != "/etc/containerd/config.toml" || se.Line != tc.line || se.Column != tc.col || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("got %s:%d:%d %q, want line %d column %d with %q", se.File, se.Line, se.Column, se.Msg, tc.line, tc.col, tc.msg)
			}
			if tc.line > 0 && !strings.HasPrefix(err.Error(), "/etc/containerd/config.toml:") {
				t.Errorf("message %q does not start with file:line:column", err)
			}
		})
	}
}

func TestParseEmptyAndLongValue(t *testing.T) {
	f, err := Parse(strings.NewReader(""), "empty.toml")
	if err != nil || f.Version != 0 || f.EffectiveVersion() != 1 || len(f.Tree) != 0 {
		t.Fatalf("empty file: %+v, %v", f, err)
	}
	// A 10 MB value on one line is valid TOML; it parses (the limit is the
	// file size, not the line length).
	long := "version = 2\nroot = \"/" + strings.Repeat("a", 3<<20) + "\"\n"
	f, err = Parse(strings.NewReader(long), "long.toml")
	if err != nil || len(f.Tree["root"].(string)) != 3<<20+1 {
		t.Fatalf("long value: %v", err)
	}
}

func TestWhereDottedAndInline(t *testing.T) {
	in := `version = 3
plugins.'io.containerd.snapshotter.v1.overlayfs'.slow_chown = true
[plugins.'io.containerd.cri.v1.images']
  pinned_images = { sandbox = 'pause' }
`
	f, err := Parse(strings.NewReader(in), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := f.Where("plugins", PluginOverlayfs, "slow_chown"); !ok || p.Line != 2 || p.Column != 1 {
		t.Errorf("dotted key at %+v %v", p, ok)
	}
	if p, ok := f.Where("plugins", PluginCRIImages, "pinned_images", "sandbox"); !ok || p.Line != 4 || p.Column != 21 {
		t.Errorf("inline table key at %+v %v", p, ok)
	}
}

func TestNumberErrorsInWords(t *testing.T) {
	_, err := Parse(strings.NewReader("version = 1e400\n"), "/etc/containerd/config.toml")
	if err == nil || strings.Contains(err.Error(), "strconv") || !strings.Contains(err.Error(), "/etc/containerd/config.toml:1:11: ") || !strings.Contains(err.Error(), "1e400 is out of range") {
		t.Errorf("%v", err)
	}
}
