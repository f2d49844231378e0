package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// childGrace bounds the wait for a killed child; SIGKILL is immediate
// unless the kernel is stuck.
const childGrace = time.Second

// userNS creates the probe user namespace: a child of /proc/self/exe in a
// new user namespace with a one-id map, exactly how runtimes create them.
// Its /proc/PID/ns/user descriptor outlives the child and is kept for the
// idmap probes; the child itself is reaped before this returns.
func (l *Live) userNS(ctx context.Context) Result {
	timeout := l.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type made struct {
		ns     *os.File
		detail map[string]string
		step   string
		err    error
	}
	// On its own goroutine so that a child that never starts cannot hang
	// the caller past the deadline; newUserNS reaps whatever it started.
	ch := make(chan made, 1)
	go func() {
		var m made
		m.ns, m.detail, m.step, m.err = newUserNS(ctx)
		ch <- m
	}()
	var m made
	select {
	case m = <-ch:
	case <-ctx.Done():
		go func() {
			if late := <-ch; late.ns != nil {
				late.ns.Close()
			}
		}()
		return userNSStopped(ctx, timeout)
	}
	if m.err != nil {
		if ctx.Err() != nil {
			return userNSStopped(ctx, timeout)
		}
		return failure(m.step, m.err, m.detail)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		m.ns.Close()
		return Result{Reason: "the prober was closed"}
	}
	if l.ns != nil {
		l.ns.Close()
	}
	l.ns = m.ns
	return Result{Ran: true, OK: true, Detail: m.detail}
}

func userNSStopped(ctx context.Context, timeout time.Duration) Result {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Result{Ran: true, Step: "clone", Errno: "ETIMEDOUT",
			Error: fmt.Sprintf("the child in a new user namespace did not start within %s", timeout)}
	}
	return interrupted(ctx.Err())
}

func newUserNS(ctx context.Context) (ns *os.File, detail map[string]string, step string, err error) {
	detail = map[string]string{
		"uid_map_requested": fmt.Sprintf("0 %d 1", MappedUID),
		"gid_map_requested": fmt.Sprintf("0 %d 1", MappedGID),
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, detail, "pipe", err
	}
	cmd := &exec.Cmd{
		Path:  "/proc/self/exe",
		Args:  []string{"usernsctl", ChildCommand},
		Env:   []string{childEnv + "=1"},
		Stdin: r,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: MappedUID, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: MappedGID, Size: 1}},
			// Belt and braces with the pipe: the child also dies with the
			// thread that started it, which is never a locked one here.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, detail, "clone", err
	}
	children.add(cmd.Process)
	defer func() {
		// The namespace descriptor stays valid whatever the child does now;
		// a child that had to be killed is worth noting, not a failure.
		if reapErr := reap(cmd, w); reapErr != nil {
			detail["child"] = reapErr.Error()
		}
		children.remove(cmd.Process)
	}()
	pid := cmd.Process.Pid
	if err := ctx.Err(); err != nil {
		return nil, detail, "clone", err
	}
	ns, err = os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	if err != nil {
		return nil, detail, "open ns", err
	}
	fail := func(step string, err error) (*os.File, map[string]string, string, error) {
		ns.Close()
		return nil, detail, step, err
	}
	var mine, child unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &mine); err != nil {
		return fail("verify", err)
	}
	if err := unix.Fstat(int(ns.Fd()), &child); err != nil {
		return fail("verify", err)
	}
	if mine.Ino == child.Ino && mine.Dev == child.Dev {
		return fail("verify", errors.New("the child shares usernsctl's user namespace: CLONE_NEWUSER had no effect"))
	}
	detail["userns_inode"] = strconv.FormatUint(child.Ino, 10)
	for _, m := range []struct{ file, want string }{
		{"uid_map", detail["uid_map_requested"]},
		{"gid_map", detail["gid_map_requested"]},
	} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + m.file)
		if err != nil {
			return fail("verify", err)
		}
		got := mapText(b)
		detail[m.file] = got
		if got != m.want {
			return fail("verify", fmt.Errorf("/proc/%d/%s reads %q, want %q", pid, m.file, got, m.want))
		}
	}
	return ns, detail, "", nil
}

// reap ends the child once the namespace descriptor is open (or the probe
// failed): closing its stdin is the order to exit, and SIGKILL makes it
// immediate, as containerd does with its own namespace child, instead of
// waiting for the child's Go runtime to start only to read EOF.
func reap(cmd *exec.Cmd, w *os.File) error {
	w.Close()
	_ = cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				return nil
			}
		}
		return exitErr(err)
	case <-time.After(childGrace):
		return fmt.Errorf("the child was not reaped within %s of SIGKILL", childGrace)
	}
}

func exitErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("the child exited badly: %w", err)
}

// children are the probe children alive right now, for the signal handler.
var children = &procSet{m: map[*os.Process]struct{}{}}

type procSet struct {
	mu sync.Mutex
	m  map[*os.Process]struct{}
}

func (s *procSet) add(p *os.Process) {
	s.mu.Lock()
	s.m[p] = struct{}{}
	s.mu.Unlock()
}

func (s *procSet) remove(p *os.Process) {
	s.mu.Lock()
	delete(s.m, p)
	s.mu.Unlock()
}

func (s *procSet) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.m {
		_ = p.Kill()
	}
}
