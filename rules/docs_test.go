package rules

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the thresholds table of docs/rules.md")

const (
	docsPath = "../docs/rules.md"
	begin    = "<!-- thresholds:begin -->\n"
	end      = "<!-- thresholds:end -->"
)

func TestDocsRulesIsCurrent(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q … %q section", docsPath, begin, end)
	}
	want := doc[:i+len(begin)] + Markdown() + doc[j:]
	if *update {
		if err := os.WriteFile(docsPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc != want {
		t.Errorf("%s is stale: run `make docs`", docsPath)
	}
}
