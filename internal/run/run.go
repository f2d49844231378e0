// Package run is the one way usernsctl executes external commands.
//
// Every command goes through a Runner. Live hosts use Exec; snapshot trees
// use Recorded (outputs from .usernsctl/commands.json); Memo makes sure each
// command line runs at most once per invocation, and Recording captures
// outputs for `usernsctl snapshot`.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotFound means the command is not installed on the host.
var ErrNotFound = errors.New("command not found")

// Runner executes a command line and returns what it printed.
type Runner interface {
	// Run runs argv. A non-nil error is an *Error (keeping the command's
	// output) or wraps ErrNotFound.
	Run(ctx context.Context, argv ...string) (Output, error)
	// Installed reports whether the program name can be run at all.
	Installed(name string) bool
}

// Output is what a command printed and how it ended.
type Output struct {
	Stdout []byte `json:"stdout"`
	Stderr []byte `json:"stderr,omitempty"`
	Exit   int    `json:"exit"`
}

// Error is a command that could not run or exited non-zero. It keeps the
// output so that a message can show what the command said.
type Error struct {
	Argv   []string
	Output Output
	Err    error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", Line(e.Argv), e.Err)
	if s := strings.TrimSpace(string(e.Output.Stderr)); s != "" {
		msg += ": " + firstLines(s, 5)
	} else if s := strings.TrimSpace(string(e.Output.Stdout)); s != "" {
		msg += ": " + firstLines(s, 5)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Line is the canonical text of a command line: the key in commands.json.
func Line(argv []string) string { return strings.Join(argv, " ") }

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, " | ")
}

// Exec runs commands on the live host with a time limit.
type Exec struct {
	// Timeout bounds each command; zero means 10 s.
	Timeout time.Duration
	// Env, when set, replaces the environment of the child.
	Env []string
}

// Run implements Runner.
func (x *Exec) Run(ctx context.Context, argv ...string) (Output, error) {
	if len(argv) == 0 {
		return Output{}, errors.New("run: empty command")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return Output{}, fmt.Errorf("%s: %w", argv[0], ErrNotFound)
	}
	timeout := x.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	if x.Env != nil {
		cmd.Env = x.Env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, killed whole at the time limit: a shell
	// command (a --restart-command) must not leave its children running
	// after usernsctl gave up on it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child that forks a grandchild holding the pipes must not hang us.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	out := Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if cmd.ProcessState != nil {
		out.Exit = cmd.ProcessState.ExitCode()
	}
	// A daemon started in the background by a restart command may keep our
	// pipes open: the command itself succeeded.
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil
	}
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		return out, &Error{Argv: argv, Output: out, Err: err}
	}
	return out, nil
}

// Installed implements Runner.
func (x *Exec) Installed(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// Memo runs each distinct command line at most once; concurrent callers of
// the same line wait for the one run.
type Memo struct {
	Inner Runner

	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done chan struct{}
	out  Output
	err  error
}

// NewMemo wraps r.
func NewMemo(r Runner) *Memo { return &Memo{Inner: r} }

// Run implements Runner.
func (m *Memo) Run(ctx context.Context, argv ...string) (Output, error) {
	key := Line(argv)
	m.mu.Lock()
	if m.calls == nil {
		m.calls = map[string]*call{}
	}
	c, ok := m.calls[key]
	if !ok {
		c = &call{done: make(chan struct{})}
		m.calls[key] = c
		m.mu.Unlock()
		c.out, c.err = m.Inner.Run(ctx, argv...)
		close(c.done)
		return c.out, c.err
	}
	m.mu.Unlock()
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return Output{}, ctx.Err()
	}
}

// Installed implements Runner.
func (m *Memo) Installed(name string) bool { return m.Inner.Installed(name) }

// Recording wraps a live runner and keeps every command's outcome, for
// `usernsctl snapshot`.
type Recording struct {
	Inner Runner

	mu  sync.Mutex
	Log map[string]Entry
}

// Run implements Runner.
func (r *Recording) Run(ctx context.Context, argv ...string) (Output, error) {
	out, err := r.Inner.Run(ctx, argv...)
	if errors.Is(err, ErrNotFound) {
		return out, err // a missing key is how a snapshot says "not installed"
	}
	var rerr *Error
	if err != nil && !errors.As(err, &rerr) {
		return out, err
	}
	r.mu.Lock()
	if r.Log == nil {
		r.Log = map[string]Entry{}
	}
	r.Log[Line(argv)] = Entry{Stdout: string(out.Stdout), Stderr: string(out.Stderr), Exit: out.Exit}
	r.mu.Unlock()
	return out, err
}

// Installed implements Runner.
func (r *Recording) Installed(name string) bool { return r.Inner.Installed(name) }
