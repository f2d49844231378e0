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
	fmt.Fprintf(b, "\n%s\n", r.Verdict())
	_, err := io.WriteString(w, b.String())
	return err
}

// Verdict is the report's last line: "READY for docker: 21 passed, …", or
// for verify "VERIFIED …" / "NOT VERIFIED …".
func (r *Report) Verdict() string {
	yes, no := "READY", "NOT READY"
	if r.Verified != nil {
		yes, no = "VERIFIED", "NOT VERIFIED"
	}
	verdict := yes
	if !r.Ready {
		verdict = no
	}
	line := fmt.Sprintf("%s for %s: %d passed, %s, %d failed, %d skipped",
		verdict, r.Target, r.Summary.Pass, Count(r.Summary.Warn, "warning"), r.Summary.Fail, r.Summary.Skip)
	if !r.Ready && r.Summary.Fail == 0 && r.strict {
		line += " (--strict: warnings count as failures)"
	}
	return line
}

// Seal fills the fields every JSON report carries: the version that made
// it and the verdict as Ansible reads it (failed, changed, msg).
func (r *Report) Seal(version string) {
	r.Version, r.Failed, r.Changed, r.Msg = version, !r.Ready, false, r.Verdict()
}

func indent(s, pad string) string { return strings.ReplaceAll(s, "\n", "\n"+pad) }
