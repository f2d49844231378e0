package containerd

import (
	"bytes"
	"os"
	"testing"
)

// BenchmarkParseDefault parses the real containerd 2.1.9 default config.
func BenchmarkParseDefault(b *testing.B) {
	data, err := os.ReadFile("testdata/default-2.1.9.toml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(data), DefaultPath); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddImport edits the real containerd 1.6.20 default config.
func BenchmarkAddImport(b *testing.B) {
	data, err := os.ReadFile("testdata/default-1.6.20.toml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := AddImport(data, DefaultPath, DropInPath); err != nil {
			b.Fatal(err)
		}
	}
}
