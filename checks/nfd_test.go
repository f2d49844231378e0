package checks

import (
	"bufio"
	"regexp"
	"strings"
	"testing"
)

// labelName is a Kubernetes qualified label name with a DNS prefix.
var labelName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)

// The file is what nfd-worker's local source reads: `#` comment lines and
// name=value lines whose names and values are valid node labels.
func TestWriteNFD(t *testing.T) {
	r := &Report{Target: Kubernetes, Kernel: "6.8.0-45-generic", Version: "v1.2.3+dirty", Ready: true,
		Checks: []Outcome{{ID: "probe.tmpfs_idmap", Status: Pass}, {ID: "probe.overlay_idmap", Status: Fail}, {ID: "probe.userns", Status: Skip}}}
	r.Summary.Fail = 1
	var b strings.Builder
	if err := r.WriteNFD(&b, map[string]string{"userns-ids": "7208960", "bad": "a/b c"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "# +") {
				t.Errorf("%q would be read as an NFD directive", line)
			}
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || !labelName.MatchString(name) || !ValidLabelValue(value) {
			t.Errorf("not a label line: %q", line)
		}
		got[name] = value
	}
	for k, v := range map[string]string{
		"usernsctl.io/userns-ready": "true", "usernsctl.io/target": "kubernetes", "usernsctl.io/kernel": "6.8.0-45-generic",
		"usernsctl.io/idmap-tmpfs": "true", "usernsctl.io/idmap-overlay": "false", "usernsctl.io/userns-ids": "7208960",
		"usernsctl.io/checks-failed": "1", "usernsctl.io/bad": "a_b_c", "usernsctl.io/version": "v1.2.3_dirty",
	} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q\n%s", k, got[k], v, b.String())
		}
	}
	if _, ok := got["usernsctl.io/userns-create"]; ok {
		t.Error("a skipped probe is no fact")
	}
	if v := LabelValue(strings.Repeat("x", 70) + "-"); !ValidLabelValue(v) || len(v) != 63 {
		t.Errorf("%q", v)
	}
}
