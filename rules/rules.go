// Package rules is the one table of the numbers the daemons enforce: the
// kernel, runtime, Docker and Kubernetes version gates and the id range
// rules. Checks, apply and the generated docs read them from here, so that
// a rule lives in one place; docs/rules.md says which daemon code enforces
// each (its "Thresholds" table is generated from All, `make docs`).
package rules

import (
	"fmt"
	"sort"
	"strings"
)

// Threshold is one number a daemon (or the kernel) enforces.
type Threshold struct {
	// Name is how code and docs refer to it ("kernel.tmpfs_idmap").
	Name string
	// Value is the version ("6.3") or number ("65536").
	Value string
	// Means says what happens at and above Value, in a few words.
	Means string
	// Source names the code that enforces it (file, function, version).
	Source string
}

// String is the value, so that a threshold reads as its number in messages.
func (t Threshold) String() string { return t.Value }

var all = map[string]Threshold{}

// def registers a threshold; names are unique.
func def(name, value, means, source string) Threshold {
	if _, dup := all[name]; dup {
		panic("rules: " + name + " defined twice")
	}
	t := Threshold{Name: name, Value: value, Means: means, Source: source}
	all[name] = t
	return t
}

// All lists every threshold, sorted by name.
func All() []Threshold {
	out := make([]Threshold, 0, len(all))
	for _, t := range all {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Markdown is the generated thresholds table of docs/rules.md.
func Markdown() string {
	b := &strings.Builder{}
	b.WriteString("| name | value | what it means | enforced by |\n|---|---|---|---|\n")
	for _, t := range All() {
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", t.Name, t.Value, strings.ReplaceAll(t.Means, "|", "\\|"), strings.ReplaceAll(t.Source, "|", "\\|"))
	}
	return b.String()
}
