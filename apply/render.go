package apply

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON prints the result as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText prints the result for people: what and why, the diffs, and
// one verdict line.
func (r *Result) WriteText(w io.Writer, verb string) error {
	b := &strings.Builder{}
	head := "usernsctl " + verb
	if r.Target != "" {
		head += ": target " + string(r.Target)
	}
	if r.DryRun {
		head += " (dry run: nothing is written)"
	}
	fmt.Fprintln(b, head)
	for _, o := range r.Blocking {
		fmt.Fprintf(b, "  [fail] %s: %s\n", o.ID, strings.ReplaceAll(o.Message, "\n", "\n         "))
		if o.Remedy != "" {
			fmt.Fprintf(b, "         fix: %s\n", strings.ReplaceAll(o.Remedy, "\n", "\n              "))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(b, "  - %s\n", n)
	}
	for _, l := range r.Live {
		fmt.Fprintf(b, "  - live: %s %s → %s\n", l.Path, l.Before, l.Value)
	}
	for _, c := range r.Changes {
		fmt.Fprintf(b, "\n%s %s", c.Action, c.Path)
		if c.Backup != "" {
			fmt.Fprintf(b, " (backup: %s)", c.Backup)
		}
		fmt.Fprintf(b, "\n%s", c.Diff)
	}
	verdict := "OK"
	switch {
	case r.Failed:
		verdict = "FAILED"
	case r.Changed && r.DryRun:
		verdict = "WOULD CHANGE"
	case r.Changed:
		verdict = "CHANGED"
	}
	fmt.Fprintf(b, "\n%s: %s\n", verdict, r.Msg)
	if r.Fix != "" {
		fmt.Fprintf(b, "  fix: %s\n", r.Fix)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
