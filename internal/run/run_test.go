package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestExecErrorKeepsOutput(t *testing.T) {
	x := &Exec{Timeout: 5 * time.Second}
	_, err := x.Run(context.Background(), "sh", "-c", "echo out; echo 'the reason' >&2; exit 3")
	var e *Error
	if !errors.As(err, &e) || e.Output.Exit != 3 || !strings.Contains(err.Error(), "the reason") || string(e.Output.Stdout) != "out\n" {
		t.Fatalf("got %#v / %v", e, err)
	}
	out, err := x.Run(context.Background(), "sh", "-c", "echo fine")
	if err != nil || string(out.Stdout) != "fine\n" {
		t.Fatalf("%q %v", out.Stdout, err)
	}
}

func TestExecNotFoundAndTimeout(t *testing.T) {
	x := &Exec{Timeout: 200 * time.Millisecond}
	if _, err := x.Run(context.Background(), "no-such-program-usernsctl"); !IsNotFound(err) {
		t.Errorf("missing program: %v", err)
	}
	if x.Installed("no-such-program-usernsctl") || !x.Installed("sh") {
		t.Error("Installed")
	}
	start := time.Now()
	_, err := x.Run(context.Background(), "sleep", "10")
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("hung command: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout not enforced: %s", d)
	}
}

type counting struct{ n atomic.Int32 }

func (c *counting) Run(_ context.Context, argv ...string) (Output, error) {
	c.n.Add(1)
	time.Sleep(20 * time.Millisecond)
	return Output{Stdout: []byte(Line(argv))}, nil
}
func (c *counting) Installed(string) bool { return true }

func TestMemoRunsEachLineOnce(t *testing.T) {
	inner := &counting{}
	m := NewMemo(inner)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); m.Run(context.Background(), "runc", "--version") }()
		go func() { defer wg.Done(); m.Run(context.Background(), "crun", "--version") }()
	}
	wg.Wait()
	if inner.n.Load() != 2 {
		t.Errorf("ran %d times, want 2", inner.n.Load())
	}
}

func TestRecordedBothForms(t *testing.T) {
	r, err := ParseRecorded(strings.NewReader(`{"runc --version": "runc version 1.2.6\n",
		"getsubids kubelet": {"stdout": "", "stderr": "Error fetching ranges\n", "exit": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := r.Run(context.Background(), "runc", "--version"); err != nil || string(out.Stdout) != "runc version 1.2.6\n" {
		t.Errorf("%q %v", out.Stdout, err)
	}
	_, err = r.Run(context.Background(), "getsubids", "kubelet")
	var e *Error
	if !errors.As(err, &e) || e.Output.Exit != 1 || !strings.Contains(err.Error(), "Error fetching ranges") {
		t.Errorf("failing command: %v", err)
	}
	if _, err := r.Run(context.Background(), "crun", "--version"); !IsNotFound(err) {
		t.Errorf("unrecorded command: %v", err)
	}
	if !r.Installed("runc") || !r.Installed("getsubids") || r.Installed("crun") {
		t.Error("Installed")
	}
	if _, err := ParseRecorded(strings.NewReader(`{"x": {"stdout": "a", "bogus": 1}}`)); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestRecordingKeepsWhatRan(t *testing.T) {
	rec := &Recording{Inner: &Exec{Timeout: 5 * time.Second}}
	rec.Run(context.Background(), "sh", "-c", "echo hi")
	rec.Run(context.Background(), "sh", "-c", "exit 2")
	rec.Run(context.Background(), "no-such-program-usernsctl")
	if rec.Log["sh -c echo hi"].Stdout != "hi\n" || rec.Log["sh -c exit 2"].Exit != 2 {
		t.Errorf("log %+v", rec.Log)
	}
	if _, ok := rec.Log["no-such-program-usernsctl"]; ok {
		t.Error("a missing program must not be recorded (absence means not installed)")
	}
}

// At the time limit the whole process group goes: no grandchild of a
// shell command outlives it.
func TestExecKillsTheGroupAtTimeout(t *testing.T) {
	x := &Exec{Timeout: 300 * time.Millisecond}
	marker := fmt.Sprintf("usernsctl-test-%d", time.Now().UnixNano())
	_, err := x.Run(context.Background(), "sh", "-c", "sh -c 'sleep 30; : "+marker+"' & exec sleep 31")
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("got %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	out, _ := exec.Command("pgrep", "-f", marker).Output()
	for _, pid := range strings.Fields(string(out)) {
		b, _ := os.ReadFile("/proc/" + pid + "/stat")
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] != "Z" {
			t.Errorf("the grandchild survived the timeout: pid %s (%s)", pid, b)
			syscall.Kill(atoi(pid), syscall.SIGKILL)
		}
	}
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// A command that leaves a background child holding its output succeeds.
func TestExecBackgroundChildHoldingPipes(t *testing.T) {
	x := &Exec{Timeout: 10 * time.Second}
	out, err := x.Run(context.Background(), "sh", "-c", "echo started; sleep 3 &")
	if err != nil || !strings.Contains(string(out.Stdout), "started") {
		t.Fatalf("got %q %v", out.Stdout, err)
	}
}

// A broken commands.json is named with line and column, like every other
// file usernsctl reads; so is anything after the object.
func TestRecordedBadInputIsLocated(t *testing.T) {
	for i, c := range []struct{ doc, want string }{
		{"{\n  \"runc --version\": \"runc version 1.2.6\\n\",\n}\n", ".usernsctl/commands.json:3:1"},
		{"{\"runc --version\": 12}", ".usernsctl/commands.json:1:"},
		{"{}\n{}\n", ".usernsctl/commands.json:2:1: unexpected data"},
		{"", "empty file"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if _, err := ParseRecorded(strings.NewReader(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q: %v, want %q", c.doc, err, c.want)
			}
		})
	}
}
