package containerd

import (
	"bytes"
	"os"
	"reflect"
	"testing"
)

// FuzzParseAndAddImport: Parse never panics, and when a file parses,
// AddImport either refuses it or returns a file that parses to the same
// keys plus the import.
func FuzzParseAndAddImport(f *testing.F) {
	for _, name := range []string{"default-1.6.20.toml", "default-2.1.9.toml"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"version = 2\nimports = [\n  \"/a.toml\", # c\n]\n",
		"version = 3 # v\r\nimports = ['/x/*.toml']\r\n",
		"version = 2\nimports = []\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n",
		"\"version\" = 2\nplugins.x.y = {a = [1, {b = 2}]}\n",
		"version = 2\n[[proxy_plugins]]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before, err := Parse(bytes.NewReader(data), "/etc/containerd/config.toml")
		if err != nil {
			return
		}
		out, changed, err := AddImport(data, "/etc/containerd/config.toml", DropInPath)
		if err != nil {
			return
		}
		after, err := Parse(bytes.NewReader(out), "/etc/containerd/config.toml")
		if err != nil {
			t.Fatalf("edited file does not parse: %v\n%q", err, out)
		}
		if !changed {
			if !bytes.Equal(out, data) {
				t.Fatal("unchanged but different bytes")
			}
			return
		}
		if !isSubsequence(data, out) {
			t.Fatal("an original byte was removed")
		}
		want := append(append([]string(nil), before.Imports...), DropInPath)
		if !reflect.DeepEqual(after.Imports, want) {
			t.Fatalf("imports %q, want %q", after.Imports, want)
		}
	})
}
