package run

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/jsonpos"
)

// CommandsFile is where a snapshot tree keeps command outputs.
const CommandsFile = "/.usernsctl/commands.json"

// Entry is one recorded command. In commands.json an entry is either a
// plain string (its stdout, exit status 0) or an object with stdout, stderr
// and exit, for commands that fail on purpose (`getsubids` with no ranges).
type Entry struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr,omitempty"`
	Exit   int    `json:"exit"`
}

// UnmarshalJSON accepts both forms.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*e = Entry{Stdout: s}
		return nil
	}
	type plain Entry
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("want a string or {\"stdout\",\"stderr\",\"exit\"}: %w", err)
	}
	*e = Entry(p)
	return nil
}

// MarshalJSON writes the plain-string form when it says everything.
func (e Entry) MarshalJSON() ([]byte, error) {
	if e.Stderr == "" && e.Exit == 0 {
		return json.Marshal(e.Stdout)
	}
	type plain Entry
	return json.Marshal(plain(e))
}

// maxCommands bounds commands.json; real ones are tens of kilobytes.
const maxCommands = 16 << 20

// Recorded answers commands from a snapshot's commands.json. It never
// executes anything.
type Recorded struct {
	entries map[string]Entry
}

// ParseRecorded reads commands.json. A nil reader (no file) means nothing is
// installed.
func ParseRecorded(r io.Reader) (*Recorded, error) {
	rec := &Recorded{entries: map[string]Entry{}}
	if r == nil {
		return rec, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, maxCommands+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CommandsFile, err)
	}
	if len(data) > maxCommands {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a commands.json", CommandsFile, maxCommands)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rec.entries); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file: want an object mapping command lines to their output", CommandsFile)
		}
		line, col := jsonpos.LineCol(data, jsonpos.Offset(data, err, dec.InputOffset()))
		return nil, errs.Inputf(errs.Pos{File: CommandsFile, Line: line, Column: col}, "%v (want an object mapping command lines to their output)", err)
	}
	if off := jsonpos.Trailing(data, dec.InputOffset()); off >= 0 {
		line, col := jsonpos.LineCol(data, off)
		return nil, errs.Inputf(errs.Pos{File: CommandsFile, Line: line, Column: col}, "unexpected data after the top-level object")
	}
	return rec, nil
}

// Run implements Runner.
func (r *Recorded) Run(_ context.Context, argv ...string) (Output, error) {
	e, ok := r.entries[Line(argv)]
	if !ok {
		return Output{}, fmt.Errorf("%s: %w (not in %s)", argv[0], ErrNotFound, CommandsFile)
	}
	out := Output{Stdout: []byte(e.Stdout), Stderr: []byte(e.Stderr), Exit: e.Exit}
	if e.Exit != 0 {
		return out, &Error{Argv: argv, Output: out, Err: fmt.Errorf("exit status %d", e.Exit)}
	}
	return out, nil
}

// Installed implements Runner: a program is installed when any recorded
// command line starts with it.
func (r *Recorded) Installed(name string) bool {
	for k := range r.entries {
		if k == name || strings.HasPrefix(k, name+" ") {
			return true
		}
	}
	return false
}

// None is a runner for hosts where nothing may be executed.
type None struct{}

// Run implements Runner.
func (None) Run(_ context.Context, argv ...string) (Output, error) {
	return Output{}, fmt.Errorf("%s: %w (nothing is executed here)", argv[0], ErrNotFound)
}

// Installed implements Runner.
func (None) Installed(string) bool { return false }

// IsNotFound reports whether err means the command is not installed.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
