package checks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Options are the operator's say over severity.
type Options struct {
	// Ignore lists check IDs whose failures become warnings ("all" = every
	// check). They are still reported, marked ignored.
	Ignore []string
	// Strict makes a warning fail the run.
	Strict bool
}

// Validate rejects ignore entries that name no check, so a typo is not a
// silent no-op.
func (o Options) Validate(known []Checker) error {
	return ValidateIDs("--ignore", o.Ignore, known)
}

// ValidateIDs rejects IDs (other than "all") that name no check; flag
// names the option in the message.
func ValidateIDs(flag string, list []string, known []Checker) error {
	ids := map[string]bool{}
	for _, c := range known {
		ids[c.Info().ID] = true
	}
	var bad []string
	for _, id := range list {
		if id != "all" && !ids[id] {
			bad = append(bad, id)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: unknown check ID %s (see `usernsctl check --list`)", flag, strings.Join(bad, ", "))
	}
	return nil
}

func (o Options) ignores(id string) bool {
	for _, x := range o.Ignore {
		if x == "all" || x == id {
			return true
		}
	}
	return false
}

// Outcome is one check in the report.
type Outcome struct {
	ID       string         `json:"id"`
	Title    string         `json:"title"`
	Status   Status         `json:"status"`
	Message  string         `json:"message"`
	Remedy   string         `json:"remedy"`
	Evidence map[string]any `json:"evidence"`
	// Ignored is set when --ignore turned a failure into a warning.
	Ignored bool `json:"ignored,omitempty"`
}

// Summary counts outcomes by status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// Report is the output contract of check and verify. Field names and
// status values are stable: other tools parse them.
type Report struct {
	Schema string `json:"schema"`
	// Version is the usernsctl that produced the report.
	Version string `json:"version"`
	// Failed is !Ready; Changed is always false (check and verify only
	// read); Msg is the verdict line. They are the fields Ansible reads.
	Failed            bool   `json:"failed"`
	Changed           bool   `json:"changed"`
	Msg               string `json:"msg"`
	Target            Target `json:"target"`
	TargetSource      string `json:"target_source"`
	KubernetesVersion string `json:"kubernetes_version,omitempty"`
	Kernel            string `json:"kernel"`
	Ready             bool   `json:"ready"`
	// Verified is verify's verdict (Ready by its own name); absent in
	// check reports.
	Verified *bool     `json:"verified,omitempty"`
	Checks   []Outcome `json:"checks"`
	Summary  Summary   `json:"summary"`

	strict bool
}

// Run runs the checkers concurrently and builds the report. It alone turns
// checker results into severities: --ignore downgrades failures, --strict
// makes warnings count, and a checker that panics is reported as a failure
// of that check rather than crashing the tool.
func Run(ctx context.Context, env *Env, list []Checker, opts Options, schema string) *Report {
	outs := make([]Outcome, len(list))
	var wg sync.WaitGroup
	for i, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = runOne(ctx, env, c, opts)
		}()
	}
	wg.Wait()

	rep := &Report{
		Schema:       schema,
		Target:       env.Target,
		TargetSource: env.TargetSource,
		Checks:       outs,
		strict:       opts.Strict,
	}
	if env.Kube != nil {
		rep.KubernetesVersion = env.Kube.String()
	}
	rep.Kernel = KernelRelease(env)
	for _, o := range outs {
		switch o.Status {
		case Pass:
			rep.Summary.Pass++
		case Warn:
			rep.Summary.Warn++
		case Fail:
			rep.Summary.Fail++
		case Skip:
			rep.Summary.Skip++
		}
	}
	rep.Ready = rep.Summary.Fail == 0 && (!opts.Strict || rep.Summary.Warn == 0)
	return rep
}

func runOne(ctx context.Context, env *Env, c Checker, opts Options) (o Outcome) {
	info := c.Info()
	o = Outcome{ID: info.ID, Title: info.Title}
	defer func() {
		if p := recover(); p != nil {
			o.Status = Fail
			o.Message = fmt.Sprintf("internal error in check %s: %v", info.ID, p)
			o.Remedy = "report this as a usernsctl bug, with `usernsctl snapshot` of this host"
			o.Evidence = map[string]any{}
		}
	}()
	r := c.Check(ctx, env)
	o.Status, o.Message, o.Remedy, o.Evidence = r.Status, r.Message, r.Remedy, r.Evidence
	if o.Status == "" {
		o.Status = Fail
		o.Message = "internal error: check returned no status"
	}
	if o.Evidence == nil {
		o.Evidence = map[string]any{}
	}
	if o.Status == Fail && opts.ignores(info.ID) {
		o.Status, o.Ignored = Warn, true
	}
	return o
}

// ExitCode is 0 when ready, 1 when a check failed (or warned under
// --strict). Usage errors (2) are decided before a report exists.
func (r *Report) ExitCode() int {
	if r.Ready {
		return 0
	}
	return 1
}

// Find returns the outcome for id.
func (r *Report) Find(id string) (Outcome, bool) {
	for _, o := range r.Checks {
		if o.ID == id {
			return o, true
		}
	}
	return Outcome{}, false
}

// Areas returns the report's areas in first-seen order.
func (r *Report) areas() []string {
	var out []string
	seen := map[string]bool{}
	for _, o := range r.Checks {
		a, _, _ := strings.Cut(o.ID, ".")
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// SortByID orders a list of checkers by ID; used for listings.
func SortByID(list []Checker) {
	sort.Slice(list, func(i, j int) bool { return list[i].Info().ID < list[j].Info().ID })
}
