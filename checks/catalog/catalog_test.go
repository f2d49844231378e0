package catalog

import (
	"flag"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
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

// TestIDPrefixNamesItsPackage: a check ID leads to its code in one hop,
// checks/<prefix>/. The registering package is read off the check's own
// function, not from a table that could drift.
func TestIDPrefixNamesItsPackage(t *testing.T) {
	const base = "github.com/usernsctl/usernsctl/checks/"
	for _, c := range All() {
		id := c.Info().ID
		prefix, _, _ := strings.Cut(id, ".")
		fn := reflect.ValueOf(c).FieldByName("fn")
		if !fn.IsValid() || fn.Kind() != reflect.Func {
			t.Fatalf("%s: %T is not made by checks.New", id, c)
		}
		name := runtime.FuncForPC(fn.Pointer()).Name() // ".../checks/docker.checkDaemonJSON"
		pkg := strings.TrimPrefix(name, base)
		pkg, _, _ = strings.Cut(pkg, ".")
		if pkg != prefix {
			t.Errorf("%s is registered by %s: want it in checks/%s", id, name, prefix)
		}
	}
}
