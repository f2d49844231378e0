package containerd

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/hosttree"
)

func TestDropInRender(t *testing.T) {
	for _, v := range []int{2, 3, 4} {
		b, err := DropIn{Version: v, SlowChown: true}.Render()
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(bytes.NewReader(b), DropInPath)
		if err != nil {
			t.Fatalf("version %d: rendered drop-in does not parse: %v\n%s", v, err, b)
		}
		if f.Version != v {
			t.Errorf("version %d written as %d", v, f.Version)
		}
		if !strings.HasPrefix(string(b), "# Managed by usernsctl") {
			t.Errorf("no ownership header:\n%s", b)
		}
		plugins := f.Tree["plugins"].(map[string]any)
		if want := map[string]any{PluginOverlayfs: map[string]any{"slow_chown": true}}; !reflect.DeepEqual(plugins, want) {
			t.Errorf("plugins %v, want only slow_chown", plugins)
		}
		again, _ := DropIn{Version: v, SlowChown: true}.Render()
		if !bytes.Equal(b, again) {
			t.Error("render is not deterministic")
		}
	}
	if b, _ := (DropIn{Version: 3}).Render(); strings.Contains(string(b), "plugins") {
		t.Errorf("nothing asked, yet:\n%s", b)
	}
	if _, err := (DropIn{Version: 0, SlowChown: true}).Render(); err == nil {
		t.Error("a version 1 drop-in must be refused")
	}
}

func TestNewMain(t *testing.T) {
	b, err := NewMain(3, DropInPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(bytes.NewReader(b), DefaultPath)
	if err != nil || f.Version != 3 || !reflect.DeepEqual(f.Imports, []string{DropInPath}) {
		t.Fatalf("%v %+v\n%s", err, f, b)
	}
	if _, err := NewMain(1); err == nil {
		t.Error("version 1 main must be refused")
	}
}

// isSubsequence reports whether every byte of a appears in b in order: the
// edit only inserted.
func isSubsequence(a, b []byte) bool {
	i := 0
	for j := 0; i < len(a) && j < len(b); j++ {
		if a[i] == b[j] {
			i++
		}
	}
	return i == len(a)
}

func TestAddImport(t *testing.T) {
	const dropin = "/etc/containerd/conf.d/99-usernsctl.toml"
	for _, tc := range []struct {
		name string
		in   string
		want string // exact expected output
	}{
		{
			name: "empty imports array (containerd config default)",
			in:   "disabled_plugins = []\nimports = []\noom_score = 0\nversion = 2\n",
			want: "disabled_plugins = []\nimports = [\"/etc/containerd/conf.d/99-usernsctl.toml\"]\noom_score = 0\nversion = 2\n",
		},
		{
			name: "no imports: a line after version, comment kept",
			in:   "# my config\nversion = 3 # keep\nroot = '/data'\n\n[plugins]\n",
			want: "# my config\nversion = 3 # keep\nimports = ['/etc/containerd/conf.d/99-usernsctl.toml']\nroot = '/data'\n\n[plugins]\n",
		},
		{
			name: "no imports, CRLF line endings",
			in:   "version = 2\r\nroot = \"/data\"\r\n",
			want: "version = 2\r\nimports = [\"/etc/containerd/conf.d/99-usernsctl.toml\"]\r\nroot = \"/data\"\r\n",
		},
		{
			name: "no imports, version last without newline",
			in:   "root = \"/data\"\nversion = 2",
			want: "root = \"/data\"\nversion = 2\nimports = [\"/etc/containerd/conf.d/99-usernsctl.toml\"]\n",
		},
		{
			name: "single-line array, single quotes",
			in:   "version = 3\nimports = ['/etc/containerd/other.toml'] # extra\n",
			want: "version = 3\nimports = ['/etc/containerd/other.toml', '/etc/containerd/conf.d/99-usernsctl.toml'] # extra\n",
		},
		{
			name: "multi-line array with trailing comma and comments",
			in:   "version = 2\nimports = [\n  \"/a.toml\", # first\n    \"/b.toml\",\n  # \"/old.toml\",\n]\n[plugins]\n",
			want: "version = 2\nimports = [\n  \"/a.toml\", # first\n    \"/b.toml\",\n    \"/etc/containerd/conf.d/99-usernsctl.toml\",\n  # \"/old.toml\",\n]\n[plugins]\n",
		},
		{
			name: "multi-line array without trailing comma, comment on last",
			in:   "version = 2\nimports = [\n\t\"/a.toml\" # last\n]\n",
			want: "version = 2\nimports = [\n\t\"/a.toml\", # last\n\t\"/etc/containerd/conf.d/99-usernsctl.toml\"\n]\n",
		},
		{
			name: "relative glob is not trusted to cover",
			in:   "version = 3\nimports = ['conf.d/*.toml']\n",
			want: "version = 3\nimports = ['conf.d/*.toml', '/etc/containerd/conf.d/99-usernsctl.toml']\n",
		},
		{
			name: "quoted key",
			in:   "\"version\" = 2\n\"imports\" = [ ]\n",
			want: "\"version\" = 2\n\"imports\" = [\"/etc/containerd/conf.d/99-usernsctl.toml\" ]\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := AddImport([]byte(tc.in), DefaultPath, dropin)
			if err != nil {
				t.Fatal(err)
			}
			if !changed || string(out) != tc.want {
				t.Fatalf("changed=%v\ngot:\n%s\nwant:\n%s", changed, out, tc.want)
			}
			if !isSubsequence([]byte(tc.in), out) {
				t.Error("an original byte was removed or reordered")
			}
			before, _ := Parse(strings.NewReader(tc.in), "before")
			after, err := Parse(bytes.NewReader(out), "after")
			if err != nil {
				t.Fatalf("edited file does not parse: %v", err)
			}
			if !reflect.DeepEqual(after.Imports, append(append([]string(nil), before.Imports...), dropin)) {
				t.Errorf("imports %q", after.Imports)
			}
			a, b := shallowCopy(before.Tree), shallowCopy(after.Tree)
			delete(a, "imports")
			delete(b, "imports")
			if !reflect.DeepEqual(a, b) {
				t.Errorf("other keys changed:\n%v\n%v", a, b)
			}
			again, changed, err := AddImport(out, DefaultPath, dropin)
			if err != nil || changed || !bytes.Equal(again, out) {
				t.Errorf("second AddImport: changed=%v err=%v", changed, err)
			}
		})
	}
}

func TestAddImportRealDefaults(t *testing.T) {
	for _, name := range []string{"default-1.6.20.toml", "default-1.7.24.toml", "default-2.1.9.toml"} {
		in := readTestdata(t, name)
		out, changed, err := AddImport(in, DefaultPath, DropInPath)
		if err != nil || !changed {
			t.Fatalf("%s: %v %v", name, changed, err)
		}
		if len(out)-len(in) != len(`"`+DropInPath+`"`) || !isSubsequence(in, out) {
			t.Errorf("%s: more than the path was inserted", name)
		}
	}
}

func TestAddImportNoChangeAndRefusals(t *testing.T) {
	covered := []string{
		"version = 3\nimports = ['/etc/containerd/conf.d/*.toml']\n", // 2.2+ default
		"version = 2\nimports = [\"/etc/containerd/conf.d/99-usernsctl.toml\"]\n",
		"version = 2\nimports = [\"conf.d/99-usernsctl.toml\"]\n", // plain relative: always parent-relative
	}
	for _, in := range covered {
		out, changed, err := AddImport([]byte(in), DefaultPath, DropInPath)
		if err != nil || changed || string(out) != in {
			t.Errorf("%q: changed=%v err=%v", in, changed, err)
		}
	}
	if _, _, err := AddImport([]byte("root = '/x'\n"), DefaultPath, DropInPath); !errors.Is(err, ErrNoVersion) {
		t.Errorf("no version: err = %v", err)
	}
	var se *errs.Input
	if _, _, err := AddImport([]byte("version = 2\n[plugins\n"), DefaultPath, DropInPath); !errors.As(err, &se) || se.Line != 2 {
		t.Errorf("bad toml: err = %v", err)
	}
	for _, bad := range []string{"relative.toml", "/etc/*.toml", "/etc/a\nb.toml"} {
		if _, _, err := AddImport([]byte("version = 2\n"), DefaultPath, bad); err == nil {
			t.Errorf("import %q accepted", bad)
		}
	}
	if _, _, err := AddImport([]byte("version = 2\nimports = 'x'\n"), DefaultPath, DropInPath); err == nil {
		t.Error("imports as a string accepted")
	}
}

// The whole apply path on a 2.x host: edit the main file, write the
// drop-in, and the effective config has slow_chown from the drop-in with
// the operator's other overlayfs settings intact.
func TestDropInEndToEnd(t *testing.T) {
	main := string(readTestdata(t, "default-2.1.9.toml"))
	at := strings.Index(main, "[plugins.'"+PluginOverlayfs+"']")
	main = main[:at] + strings.Replace(main[at:], "root_path = ''", "root_path = '/data/ovl'", 1)
	edited, _, err := AddImport([]byte(main), DefaultPath, DropInPath)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := DropIn{Version: 3, SlowChown: true}.Render()
	h := hosttree.Host(t, map[string]string{DefaultPath: string(edited), DropInPath: string(d)})
	c, err := Load(h, DefaultPath, v2)
	if err != nil {
		t.Fatal(err)
	}
	on, o, err := c.SlowChown()
	if err != nil || !on || o.File != DropInPath {
		t.Fatalf("slow_chown %v from %s (%v)", on, o, err)
	}
	if p, o, _ := c.OverlayfsRoot(); p != "/data/ovl" || o.File != DefaultPath {
		t.Errorf("root_path %q from %s", p, o)
	}
}
