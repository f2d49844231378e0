package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/usernsctl/usernsctl/"

// layers says which of the module's own packages a package may import (its
// tests included), by the first element of its path: internal/ is the
// ground floor and imports nothing above it; config/ parsers stand on it.
var layers = map[string][]string{
	"internal": {"internal"},
	"config":   {"internal", "config"},
}

func TestLayers(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot list the packages")
	}
	out, err := exec.Command(gobin, "list", "-f",
		`{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(fields[0], module)
		allowed, ok := layers[layer(pkg)]
		if !ok {
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			dep, own := strings.CutPrefix(imp, module)
			if !own || dep == pkg {
				continue
			}
			if !slices.Contains(allowed, layer(dep)) {
				t.Errorf("%s imports %s: %s/ may import only %s", pkg, dep, layer(pkg), strings.Join(allowed, ", "))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package of internal/ or config/ listed")
	}
}

func layer(pkg string) string {
	first, _, _ := strings.Cut(pkg, "/")
	return first
}
