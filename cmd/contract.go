package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usernsctl/usernsctl/internal/build"
	"github.com/usernsctl/usernsctl/internal/errs"
)

// errorReport is the one JSON object an error prints with --output json:
// the fields every report has, for Ansible's from_json and failed_when.
type errorReport struct {
	Schema  string `json:"schema"`
	Version string `json:"version"`
	Failed  bool   `json:"failed"`
	Changed bool   `json:"changed"`
	Msg     string `json:"msg"`
	Fix     string `json:"fix,omitempty"`
}

func writeErrorJSON(w io.Writer, schema string, err error) {
	r := errorReport{Schema: schema, Version: build.Version(), Failed: true, Msg: err.Error()}
	if in, ok := errs.AsInput(err); ok {
		r.Fix = in.Fix
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(r)
}

// schemaOf names the schema of the command args run ("usernsctl.apply/v1"),
// or "usernsctl/v1" when they name none.
func schemaOf(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == root || c == nil {
		return "usernsctl/v1"
	}
	return "usernsctl." + c.Name() + "/v1"
}

// jsonRequested reads --output json off the raw arguments, for errors
// that stop flag parsing before --output is reached.
func jsonRequested(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-ojson", a == "-o=json", a == "--output=json":
			return true
		case (a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// pflag's messages name Go's parsers ("strconv.ParseInt: parsing \"x\":
// invalid syntax"); say what the flag wants instead.
var badFlagValue = regexp.MustCompile(`^invalid argument "(.*)" for "(.*?)" flag: (.*)$`)

// flagError words cobra's and pflag's errors for operators.
func flagError(err error) error {
	m := badFlagValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	value, flag, why := m[1], m[2], m[3]
	if i := strings.LastIndex(flag, ", "); i >= 0 {
		flag = flag[i+2:] // "-o, --output" → "--output"
	}
	want := "a valid value"
	switch {
	case strings.Contains(why, "ParseInt") || strings.Contains(why, "ParseUint"):
		want = "a whole number"
		if strings.Contains(why, "out of range") {
			want = "a whole number in range"
		}
	case strings.Contains(why, "ParseBool"):
		want = "true or false"
	case strings.Contains(why, "duration"):
		want = "a duration such as 90s or 2m"
	}
	return fmt.Errorf("%s %q: want %s", flag, value, want)
}

// onlyFor refuses flags given for a target they do not apply to: a flag
// that would be silently ignored is a usage error.
func onlyFor(c *cobra.Command, target string, flags map[string][]string) error {
	for name, targets := range flags {
		f := c.Flags().Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		ok := false
		for _, t := range targets {
			ok = ok || t == target
		}
		if !ok {
			return usageErr("--%s is for --target %s, not %s", name, strings.Join(targets, " or "), target)
		}
	}
	return nil
}

var errNoRoot = errors.New(`--root "": give a directory (omit --root to use this host)`)

// writeJSON prints v as the command's one JSON object.
func writeJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// userFlag is --user as given: surrounding blanks are not part of a
// name, and a value that is only blanks names nobody.
func userFlag(v string) (string, error) {
	if v != strings.TrimSpace(v) {
		return "", usageErr("--user %q: a user name has no leading or trailing blanks", v)
	}
	return v, nil
}
