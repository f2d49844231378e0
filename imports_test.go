package main

import (
	"go/parser"
	"go/token"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestImportGroups: every file imports in up to three groups, in order —
// the standard library, then other modules, then this module's own
// packages — so that a reader sees at a glance what a file stands on.
func TestImportGroups(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "*.go").Output()
	if err != nil {
		t.Skipf("git ls-files: %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		prevLine, prevKind, groupKind := -1, -1, -1
		for _, imp := range file.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			kind := 1
			switch {
			case strings.HasPrefix(p, "github.com/usernsctl/usernsctl"):
				kind = 2
			case !strings.Contains(strings.Split(p, "/")[0], "."):
				kind = 0
			}
			line := fset.Position(imp.Pos()).Line
			newGroup := prevLine >= 0 && line > prevLine+1
			switch {
			case prevLine >= 0 && !newGroup && kind != groupKind:
				t.Errorf("%s:%d: %s is in a group of another kind (standard library, other modules, this module)", f, line, p)
			case newGroup && kind <= prevKind:
				t.Errorf("%s:%d: %s starts a group out of order (standard library, then other modules, then this module)", f, line, p)
			}
			if prevLine < 0 || newGroup {
				groupKind = kind
			}
			prevLine, prevKind = line, kind
		}
	}
}
