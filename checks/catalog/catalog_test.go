package catalog

import (
	"flag"
	"os"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/checks.md")

var idRe = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)

func TestIDsAreStableShape(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range All() {
		i := c.Info()
		if !idRe.MatchString(i.ID) {
			t.Errorf("check ID %q is not a dotted lower-case name", i.ID)
		}
		if seen[i.ID] {
			t.Errorf("duplicate check ID %q", i.ID)
		}
		seen[i.ID] = true
		if i.Title == "" || i.Doc == "" {
			t.Errorf("check %s needs a title and a one-line doc", i.ID)
		}
	}
}

func TestDocsChecksIsCurrent(t *testing.T) {
	const path = "../../docs/checks.md"
	want := Markdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make docs`)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/checks.md is stale: run `make docs`")
	}
}
