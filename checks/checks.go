// Package checks is the preflight engine: the Checker contract, the
// environment checkers read from, and the one runner that decides severity
// and produces the report. Checkers live in the area packages under checks/
// and are listed by checks/catalog.
package checks

import (
	"context"
	"fmt"
	"strings"
)

// Status is a check's verdict.
type Status string

// The four verdicts, in the order the report sorts them by severity.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Info describes a check for listings and docs.
type Info struct {
	// ID is stable, dotted and lower case: "sysctl.max_user_namespaces".
	// Its first element is the area the text report groups it under.
	ID    string
	Title string
	// Doc is one line for `--list` and docs/checks.md.
	Doc string
	// Targets the check applies to; empty means every target.
	Targets []Target
}

// Area is the first element of the ID.
func (i Info) Area() string {
	area, _, _ := strings.Cut(i.ID, ".")
	return area
}

// AppliesTo reports whether the check runs for target t.
func (i Info) AppliesTo(t Target) bool {
	if len(i.Targets) == 0 {
		return true
	}
	for _, x := range i.Targets {
		if x == t {
			return true
		}
	}
	return false
}

// Result is a checker's finding before the runner applies --ignore.
type Result struct {
	Status Status
	// Message states the finding with the values seen and where they came
	// from (file and line).
	Message string
	// Remedy is the exact command or edit that fixes it; empty on pass.
	Remedy string
	// Evidence holds the raw values behind the message, for machines.
	Evidence map[string]any
}

// Checker is one preflight check. Checkers only read: through env.Host,
// env.Run and env.Probes, never anything else.
type Checker interface {
	Info() Info
	Check(ctx context.Context, env *Env) Result
}

// New makes a Checker from its description and function.
func New(info Info, fn func(ctx context.Context, env *Env) Result) Checker {
	return funcChecker{info: info, fn: fn}
}

type funcChecker struct {
	info Info
	fn   func(context.Context, *Env) Result
}

func (c funcChecker) Info() Info                                 { return c.info }
func (c funcChecker) Check(ctx context.Context, env *Env) Result { return c.fn(ctx, env) }

// Passf, Warnf, Failf and Skipf build results tersely.
func Passf(format string, a ...any) Result {
	return Result{Status: Pass, Message: fmt.Sprintf(format, a...)}
}

// Warnf is a warning with a remedy.
func Warnf(remedy, format string, a ...any) Result {
	return Result{Status: Warn, Message: fmt.Sprintf(format, a...), Remedy: remedy}
}

// Failf is a failure with a remedy.
func Failf(remedy, format string, a ...any) Result {
	return Result{Status: Fail, Message: fmt.Sprintf(format, a...), Remedy: remedy}
}

// Skipf is a check that does not apply here.
func Skipf(format string, a ...any) Result {
	return Result{Status: Skip, Message: fmt.Sprintf(format, a...)}
}

// With returns r with evidence attached.
func (r Result) With(key string, value any) Result {
	if r.Evidence == nil {
		r.Evidence = map[string]any{}
	}
	r.Evidence[key] = value
	return r
}

// ListEntry is one check in a `--list --output json` listing.
type ListEntry struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Doc     string   `json:"doc"`
	Targets []Target `json:"targets"`
}

// Listing is `--list --output json`: the checks, with the fields every
// JSON output has.
type Listing struct {
	Schema  string      `json:"schema"`
	Version string      `json:"version"`
	Failed  bool        `json:"failed"`
	Changed bool        `json:"changed"`
	Msg     string      `json:"msg"`
	Checks  []ListEntry `json:"checks"`
}

// NewListing lists the checks under schema.
func NewListing(schema, version string, list []Checker) Listing {
	l := Listing{Schema: schema, Version: version, Msg: Count(len(list), "check"), Checks: []ListEntry{}}
	for _, c := range list {
		i := c.Info()
		ts := i.Targets
		if len(ts) == 0 {
			ts = AllTargets
		}
		l.Checks = append(l.Checks, ListEntry{ID: i.ID, Title: i.Title, Doc: i.Doc, Targets: ts})
	}
	return l
}
