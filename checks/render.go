package checks

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

var statusColor = map[Status]string{Pass: "\x1b[32m", Warn: "\x1b[33m", Fail: "\x1b[31m", Skip: "\x1b[2m"}

// WriteText prints the report for people: grouped by area, remedies
// indented, one verdict line at the end. Colour only when asked (a
// terminal with NO_COLOR unset).
func (r *Report) WriteText(w io.Writer, color bool, verb string) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "usernsctl %s: target %s (%s)", verb, r.Target, r.TargetSource)
	if r.KubernetesVersion != "" {
		fmt.Fprintf(b, ", Kubernetes %s", r.KubernetesVersion)
	}
	if r.Kernel != "" {
		fmt.Fprintf(b, ", kernel %s", r.Kernel)
	}
	b.WriteString("\n")
	for _, area := range r.areas() {
		fmt.Fprintf(b, "\n%s\n", area)
		for _, o := range r.Checks {
			if a, _, _ := strings.Cut(o.ID, "."); a != area {
				continue
			}
			mark := string(o.Status)
			if color {
				mark = statusColor[o.Status] + mark + "\x1b[0m"
			}
			ign := ""
			if o.Ignored {
				ign = " (ignored)"
			}
			fmt.Fprintf(b, "  [%s] %s%s: %s\n", mark, o.ID, ign, indent(o.Message, "         "))
			if o.Remedy != "" && o.Status != Pass {
				fmt.Fprintf(b, "         fix: %s\n", indent(o.Remedy, "              "))
			}
		}
	}
	verdict := "READY"
	if !r.Ready {
		verdict = "NOT READY"
	}
	fmt.Fprintf(b, "\n%s for %s: %d passed, %s, %d failed, %d skipped\n",
		verdict, r.Target, r.Summary.Pass, Count(r.Summary.Warn, "warning"), r.Summary.Fail, r.Summary.Skip)
	_, err := io.WriteString(w, b.String())
	return err
}

func indent(s, pad string) string { return strings.ReplaceAll(s, "\n", "\n"+pad) }
