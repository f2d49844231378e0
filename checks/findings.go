package checks

import "strings"

// Findings collects what one check found, piece by piece, so that a check
// with several concerns can judge each in its own function: the verdict is
// the worst finding, the message every failure then every warning, the
// remedy every remedy, in order, and notes follow in parentheses.
type Findings struct {
	fails, warns, remedies, notes []string
}

// Fail adds a finding the daemon will not live with.
func (f *Findings) Fail(msg, remedy string) {
	f.fails = append(f.fails, msg)
	f.remedy(remedy)
}

// Warn adds a finding that costs or surprises but does not stop anything.
func (f *Findings) Warn(msg, remedy string) {
	f.warns = append(f.warns, msg)
	f.remedy(remedy)
}

// Note adds context that changes no verdict.
func (f *Findings) Note(msg string) { f.notes = append(f.notes, msg) }

func (f *Findings) remedy(r string) {
	if r != "" {
		f.remedies = append(f.remedies, r)
	}
}

// Result is the verdict over r's evidence; pass is the message when
// nothing failed or warned.
func (f *Findings) Result(r Result, pass string) Result {
	switch {
	case len(f.fails) > 0:
		r.Status, r.Message = Fail, strings.Join(append(f.fails, f.warns...), "; ")
	case len(f.warns) > 0:
		r.Status, r.Message = Warn, strings.Join(f.warns, "; ")
	default:
		r.Status, r.Message = Pass, pass
	}
	if r.Status != Pass {
		r.Remedy = strings.Join(f.remedies, "; ")
	}
	if len(f.notes) > 0 {
		r.Message += " (note: " + strings.Join(f.notes, "; ") + ")"
	}
	return r
}
