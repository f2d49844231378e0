package systemd

import "strings"

// Flag is one command-line flag and where it was written.
type Flag struct {
	// Name is the long name without dashes ("config-file"), a shorthand
	// resolved to its long name when the caller knows it.
	Name string
	// Value is the flag's value; HasValue is false for a boolean written
	// without "=value".
	Value    string
	HasValue bool
	// Text is the flag as written ("--config-file=/x", "-H fd://").
	Text string
	Word Word
}

// Where is the flag's "FILE line N".
func (f Flag) Where() string { return f.Word.Where() }

// FlagSyntax tells ParseFlags what it cannot guess: which flags are
// booleans (they never take the next word as their value) and the long
// names of shorthands.
type FlagSyntax struct {
	IsBool func(long string) bool
	Long   func(short string) string
}

// ParseFlags reads pflag-style flags from argv (argv[0], the program, is
// skipped): --name=value, --name value, --bool, -x value, -xvalue, -x=value
// and clustered boolean shorthands (-Dx value). Words that are not flags
// are skipped; "--" ends the flags.
func ParseFlags(argv []Word, syn FlagSyntax) []Flag {
	isBool := func(n string) bool { return syn.IsBool != nil && syn.IsBool(n) }
	long := func(s string) string {
		if syn.Long != nil {
			if l := syn.Long(s); l != "" {
				return l
			}
		}
		return s
	}
	var out []Flag
	if len(argv) > 0 {
		argv = argv[1:]
	}
	// next returns the following word as a value when it is not a flag.
	next := func(i int) (string, bool) {
		if i+1 < len(argv) && !strings.HasPrefix(argv[i+1].Text, "-") {
			return argv[i+1].Text, true
		}
		return "", false
	}
	for i := 0; i < len(argv); i++ {
		w := argv[i]
		t := w.Text
		switch {
		case t == "--":
			return out
		case strings.HasPrefix(t, "--") && len(t) > 2:
			name, val, hasEq := strings.Cut(t[2:], "=")
			f := Flag{Name: name, Value: val, HasValue: hasEq, Text: t, Word: w}
			if !hasEq && !isBool(name) {
				if v, ok := next(i); ok {
					f.Value, f.HasValue, f.Text = v, true, t+" "+v
					i++
				}
			}
			out = append(out, f)
		case strings.HasPrefix(t, "-") && len(t) > 1:
			rest := t[1:]
			for len(rest) > 0 {
				name := long(rest[:1])
				rest = rest[1:]
				f := Flag{Name: name, Text: t, Word: w}
				if isBool(name) {
					if v, ok := strings.CutPrefix(rest, "="); ok {
						f.Value, f.HasValue, rest = v, true, ""
					}
					out = append(out, f)
					continue
				}
				switch {
				case rest != "":
					f.Value, f.HasValue = strings.TrimPrefix(rest, "="), true
					rest = ""
				default:
					if v, ok := next(i); ok {
						f.Value, f.HasValue, f.Text = v, true, t+" "+v
						i++
					}
				}
				out = append(out, f)
			}
		}
	}
	return out
}
