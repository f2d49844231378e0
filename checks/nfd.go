package checks

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// NFDPrefix is the label namespace of usernsctl's node labels.
const NFDPrefix = "usernsctl.io/"

// NFDFile is where node-feature-discovery's worker reads local feature
// files (its local source; one `name=value` per line, `#` comments).
const NFDFile = "/etc/kubernetes/node-feature-discovery/features.d/usernsctl"

// nfdProbes are the checks whose verdict is a key fact for scheduling:
// the label says whether the capability works here.
var nfdProbes = map[string]string{
	"probe.userns":             "userns-create",
	"probe.overlay_idmap":      "idmap-overlay",
	"probe.tmpfs_idmap":        "idmap-tmpfs",
	"probe.kubelet_pods_idmap": "idmap-pod-volumes",
}

// labelValue is a Kubernetes label value: at most 63 characters of
// [A-Za-z0-9._-], starting and ending alphanumeric.
var labelValue = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)

var notLabelChar = regexp.MustCompile(`[^-A-Za-z0-9_.]`)

// LabelValue turns s into a valid label value ("" when nothing is left).
func LabelValue(s string) string {
	s = notLabelChar.ReplaceAllString(s, "_")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "-_.")
}

// ValidLabelValue reports whether v is a Kubernetes label value.
func ValidLabelValue(v string) bool { return len(v) <= 63 && labelValue.MatchString(v) }

// NFDLabels are the node labels of the report: ready or not, the target,
// the kernel, what the probes found, and extra facts (name → value) the
// caller adds. Names are unprefixed; NFDPrefix goes before each.
func (r *Report) NFDLabels(extra map[string]string) map[string]string {
	l := map[string]string{
		"userns-ready":  fmt.Sprint(r.Ready),
		"target":        LabelValue(string(r.Target)),
		"checks-failed": fmt.Sprint(r.Summary.Fail),
	}
	if r.Kernel != "" {
		l["kernel"] = LabelValue(r.Kernel)
	}
	if r.Version != "" {
		l["version"] = LabelValue(r.Version)
	}
	for _, o := range r.Checks {
		name, ok := nfdProbes[o.ID]
		if !ok {
			continue
		}
		switch o.Status {
		case Pass:
			l[name] = "true"
		case Fail:
			l[name] = "false"
		}
	}
	for k, v := range extra {
		if v = LabelValue(v); v != "" {
			l[k] = v
		}
	}
	return l
}

// WriteNFD writes the labels as a node-feature-discovery feature file.
func (r *Report) WriteNFD(w io.Writer, extra map[string]string) error {
	l := r.NFDLabels(extra)
	names := make([]string, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	sort.Strings(names)
	b := &strings.Builder{}
	fmt.Fprintf(b, "# usernsctl %s check for %s: %s\n", r.Version, r.Target, r.Verdict())
	for _, k := range names {
		fmt.Fprintf(b, "%s%s=%s\n", NFDPrefix, k, l[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
