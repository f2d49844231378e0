package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// ruleDirs are the packages held to "a rule's number lives in one place":
// a version gate or range rule in their code comes from package rules,
// never a literal (messages format the rules value too). Add a package
// when its checks read the table.
var ruleDirs = []string{
	"checks/kubelet", "config/kubelet", "remap", // the kubelet rows
	"checks/containerd", "checks/kernel", "checks/facts", "config/containerd", // containerd and kernel rules
	"checks/docker", "config/daemonjson", // docker rules
	"checks/probe", "checks/runtime",
}

// notRules are version-like tokens in messages that are no rule: names of
// distributions and examples.
var notRules = []string{"24.04", "22.04"}

var versionToken = regexp.MustCompile(`(?:^|[^\w.])(\d+\.\d+(?:\.\d+)?)(?:[^\w.]|$)`)

func TestNoRuleNumbersOutsideRules(t *testing.T) {
	for _, dir := range ruleDirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, f, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				for _, m := range versionToken.FindAllStringSubmatch(lit.Value, -1) {
					if !slices.Contains(notRules, m[1]) {
						t.Errorf("%s: %s in a literal: take it from package rules", fset.Position(lit.Pos()), m[1])
					}
				}
				return true
			})
		}
	}
}
