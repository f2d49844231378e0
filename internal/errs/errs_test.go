package errs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestPosRendering(t *testing.T) {
	for _, tc := range []struct {
		p    Pos
		want string
	}{
		{Pos{File: "/etc/subuid"}, "/etc/subuid"},
		{At("/etc/subuid", 3), "/etc/subuid:3"},
		{Pos{File: "/etc/docker/daemon.json", Line: 8, Column: 1}, "/etc/docker/daemon.json:8:1"},
		{Pos{File: "f", Column: 4}, "f"}, // a column without a line says nothing
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.p.String(); got != tc.want {
				t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
			}
		})
	}
}

func TestInput(t *testing.T) {
	e := &Input{Pos: Pos{File: "/etc/docker/daemon.json", Line: 8, Column: 1}, Msg: "invalid character '}'", Fix: "delete the ',' at line 7 column 28"}
	if got, want := e.Error(), "/etc/docker/daemon.json:8:1: invalid character '}' (delete the ',' at line 7 column 28)"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if got := (&Input{Msg: "no file"}).Error(); got != "no file" {
		t.Errorf("no position: %q", got)
	}
	wrapped := fmt.Errorf("apply: %w", &Input{Pos: At("x", 1), Msg: "bad", Err: fs.ErrNotExist})
	in, ok := AsInput(wrapped)
	if !ok || in.Line != 1 || !errors.Is(wrapped, fs.ErrNotExist) {
		t.Errorf("AsInput(%v) = %+v, %v", wrapped, in, ok)
	}
	if _, ok := AsInput(errors.New("plain")); ok {
		t.Error("a plain error is not bad input")
	}
	if r := (&Refusal{Reason: "taken", Fix: "free it"}); r.Error() != "taken" {
		t.Errorf("refusal: %q", r.Error())
	}
}
