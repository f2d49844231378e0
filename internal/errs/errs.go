// Package errs is usernsctl's error vocabulary, one type for each way a
// command can end badly: Input (bad input at a place in a file: exit 2,
// nothing written) and Refusal (a state apply will not change on its own:
// exit 1, nothing written). Positions render one way everywhere: Pos.
package errs

import (
	"errors"
	"fmt"
	"strconv"
)

// Pos is a place in a file: 1-based line and column (bytes, unless the
// parser says otherwise); 0 when unknown.
type Pos struct {
	File         string
	Line, Column int
}

// String is "file:line:column", "file:line" or "file".
func (p Pos) String() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
		if p.Column > 0 {
			s += ":" + strconv.Itoa(p.Column)
		}
	}
	return s
}

// At is a position, for messages that are not errors ("/etc/subuid:3").
func At(file string, line int) Pos { return Pos{File: file, Line: line} }

// Input is bad input: what is wrong, where, and the fix when the parser
// knows one.
type Input struct {
	Pos
	Msg string
	// Fix is the edit that makes the input acceptable, "" when no single
	// edit is known.
	Fix string
	// Err is the underlying error, if any (for errors.Is).
	Err error
}

// Error is "file:line:column: msg (fix)".
func (e *Input) Error() string {
	s := e.Msg
	if e.File != "" {
		s = e.Pos.String() + ": " + s
	}
	if e.Fix != "" {
		s += " (" + e.Fix + ")"
	}
	return s
}

func (e *Input) Unwrap() error { return e.Err }

// Inputf is bad input at pos.
func Inputf(pos Pos, format string, a ...any) *Input {
	return &Input{Pos: pos, Msg: fmt.Sprintf(format, a...)}
}

// AsInput returns the first *Input in err's chain.
func AsInput(err error) (*Input, bool) {
	var in *Input
	ok := errors.As(err, &in)
	return in, ok
}

// Refusal is a state usernsctl will not change on its own; the operator
// fixes it (Fix says how) and runs the command again.
type Refusal struct {
	Reason string
	Fix    string
}

func (r *Refusal) Error() string { return r.Reason }
