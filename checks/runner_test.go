package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/usernsctl/usernsctl/internal/host"
)

func fixed(id string, st Status) Checker {
	return New(Info{ID: id, Title: id, Doc: id}, func(context.Context, *Env) Result {
		return Result{Status: st, Message: id + " says " + string(st), Remedy: "fix " + id}
	})
}

func testEnv(t *testing.T) *Env {
	dir := t.TempDir()
	h, err := host.At(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Host: h, Target: Docker, TargetSource: "--target"}
}

func TestRunnerDecidesSeverity(t *testing.T) {
	list := []Checker{fixed("a.pass", Pass), fixed("a.warn", Warn), fixed("b.fail", Fail), fixed("b.skip", Skip)}
	for _, c := range []struct {
		name  string
		opts  Options
		ready bool
		sum   Summary
	}{
		{"plain", Options{}, false, Summary{Pass: 1, Warn: 1, Fail: 1, Skip: 1}},
		{"ignore the failure", Options{Ignore: []string{"b.fail"}}, true, Summary{Pass: 1, Warn: 2, Skip: 1}},
		{"ignore all", Options{Ignore: []string{"all"}}, true, Summary{Pass: 1, Warn: 2, Skip: 1}},
		{"strict with a warning", Options{Strict: true, Ignore: []string{"b.fail"}}, false, Summary{Pass: 1, Warn: 2, Skip: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := Run(context.Background(), testEnv(t), list, c.opts, "usernsctl.check/v1")
			if rep.Ready != c.ready || rep.Summary != c.sum {
				t.Errorf("%s: ready %v summary %+v, want %v %+v", c.name, rep.Ready, rep.Summary, c.ready, c.sum)
			}
			wantCode := 1
			if c.ready {
				wantCode = 0
			}
			if rep.ExitCode() != wantCode {
				t.Errorf("%s: exit %d", c.name, rep.ExitCode())
			}
			if o, _ := rep.Find("b.fail"); len(c.opts.Ignore) > 0 && (!o.Ignored || o.Status != Warn) {
				t.Errorf("%s: ignored failure reported as %+v", c.name, o)
			}
		})
	}
}

// A checker that panics fails its own check; the others still report.
func TestRunnerContainsPanics(t *testing.T) {
	boom := New(Info{ID: "x.boom", Title: "boom", Doc: "boom"}, func(context.Context, *Env) Result { panic("kaput") })
	rep := Run(context.Background(), testEnv(t), []Checker{boom, fixed("x.ok", Pass)}, Options{}, "s")
	o, _ := rep.Find("x.boom")
	if o.Status != Fail || !strings.Contains(o.Message, "kaput") {
		t.Errorf("panicking check: %+v", o)
	}
	if o, _ := rep.Find("x.ok"); o.Status != Pass {
		t.Errorf("the other check: %+v", o)
	}
}

func TestValidateIDs(t *testing.T) {
	known := []Checker{fixed("a.b", Pass)}
	if err := ValidateIDs("--ignore", []string{"a.b", "all"}, known); err != nil {
		t.Error(err)
	}
	if err := ValidateIDs("--ignore", []string{"a.c"}, known); err == nil || !strings.Contains(err.Error(), "--ignore: unknown check ID a.c") {
		t.Errorf("got %v", err)
	}
}

// The JSON contract: field names and status strings are stable.
func TestReportJSONShape(t *testing.T) {
	rep := Run(context.Background(), testEnv(t), []Checker{fixed("a.warn", Warn)}, Options{}, "usernsctl.check/v1")
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "target", "kernel", "ready", "checks", "summary"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b.String())
		}
	}
	c := m["checks"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "title", "status", "message", "remedy", "evidence"} {
		if _, ok := c[k]; !ok {
			t.Errorf("check lacks %q", k)
		}
	}
	if c["status"] != "warn" || m["schema"] != "usernsctl.check/v1" {
		t.Errorf("got %v", m)
	}
}

func TestTextGroupsByAreaWithoutColour(t *testing.T) {
	rep := Run(context.Background(), testEnv(t), []Checker{fixed("a.pass", Pass), fixed("b.fail", Fail)}, Options{}, "s")
	var b bytes.Buffer
	rep.WriteText(&b, false, "check")
	out := b.String()
	for _, want := range []string{"\na\n  [pass] a.pass", "\nb\n  [fail] b.fail: b.fail says fail\n         fix: fix b.fail", "NOT READY for docker: 1 passed, 0 warnings, 1 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour without a terminal")
	}
}

// Facts load once however many checks ask at once.
func TestFactLoadsOnce(t *testing.T) {
	env := testEnv(t)
	var n atomic.Int32
	list := make([]Checker, 20)
	for i := range list {
		list[i] = New(Info{ID: "f.c" + string(rune('a'+i)), Title: "t", Doc: "d"}, func(context.Context, *Env) Result {
			v, _ := Fact(env, "k", func(*Env) (int, error) { n.Add(1); return 42, nil })
			if v != 42 {
				return Failf("", "got %d", v)
			}
			return Passf("ok")
		})
	}
	rep := Run(context.Background(), env, list, Options{}, "s")
	if n.Load() != 1 || rep.Summary.Pass != 20 {
		t.Errorf("loaded %d times, %+v", n.Load(), rep.Summary)
	}
}
