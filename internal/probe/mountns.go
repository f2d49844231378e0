package probe

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The mount work of every probe happens on a dedicated OS thread that has
// unshared its mount namespace and made every mount in it private:
//
//   - the filesystem under test is still tested honestly: the private
//     namespace holds copies of the host's mounts of the very same
//     superblocks, and idmap support is a property of the superblock and
//     its filesystem type, not of the namespace;
//   - nothing the probes mount is ever visible in, or propagates to, the
//     host's mount table (a shared /var/lib would otherwise carry our
//     mounts into every peer namespace, containers included);
//   - the namespace dies with the thread, so even SIGKILL cannot leave a
//     probe mount behind. Only the scratch directories can outlive a
//     SIGKILL, and they are named .usernsctl-probe-*.
//
// A worker serves the probes that arrive while it is alive and exits soon
// after its queue empties, so a namespace copy is never older than one
// burst of probes (a mount made on the host after the copy would otherwise
// be missing from it).

// linger is how long an idle worker waits for more probes before its
// thread, and the namespace with it, goes away.
const linger = 10 * time.Millisecond

type worker struct {
	jobs chan *job
}

type job struct {
	ctx  context.Context
	fn   func(*session) Result
	out  chan Result
	step atomic.Pointer[string]
}

func (j *job) setStep(s string) { j.step.Store(&s) }

func (j *job) stepName() string {
	if p := j.step.Load(); p != nil {
		return *p
	}
	return "queued"
}

// inMountNS runs fn in a private mount namespace, bounded by the prober's
// timeout. On timeout the caller gets an answer at once; fn's own cleanup
// still runs whenever the kernel lets it continue.
func (l *Live) inMountNS(ctx context.Context, fn func(*session) Result) Result {
	timeout := l.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	j := &job{ctx: ctx, fn: fn, out: make(chan Result, 1)}

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return Result{Reason: "the prober was closed"}
	}
	w := l.worker
	if w == nil {
		w = &worker{jobs: make(chan *job, 64)}
		l.worker = w
		l.busy.Add(1)
		go l.serve(w)
	}
	select {
	case w.jobs <- j:
	default:
		l.mu.Unlock()
		return Result{Reason: "too many probes queued at once"}
	}
	l.mu.Unlock()

	select {
	case r := <-j.out:
		return r
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The worker may be stuck in the kernel: later probes get a
			// fresh one.
			l.mu.Lock()
			if l.worker == w {
				l.worker = nil
			}
			l.mu.Unlock()
			return Result{Ran: true, Errno: "ETIMEDOUT", Step: j.stepName(),
				Error: fmt.Sprintf("no answer within %s (step %s)", timeout, j.stepName())}
		}
		return interrupted(ctx.Err())
	}
}

func (l *Live) serve(w *worker) {
	defer l.busy.Done()
	// Never unlocked: when this goroutine returns the runtime ends the
	// thread, and the private mount namespace with it.
	runtime.LockOSThread()
	nsErr := privateMountNS()
	idle := time.NewTimer(linger)
	defer idle.Stop()
	for {
		select {
		case j := <-w.jobs:
			j.out <- runJob(j, nsErr)
			idle.Reset(linger)
			continue
		case <-idle.C:
		case <-l.quit:
		}
		if l.retire(w) {
			return
		}
		idle.Reset(linger)
	}
}

// retire takes an idle worker out of service unless a probe was queued
// for it meanwhile (submissions happen under l.mu, so none is lost).
func (l *Live) retire(w *worker) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(w.jobs) > 0 {
		return false
	}
	if l.worker == w {
		l.worker = nil
	}
	return true
}

// privateMountNS moves the calling thread into a new mount namespace in
// which no mount propagates back to the host. unshare(CLONE_NEWNS) also
// unshares the thread's cwd and root (CLONE_FS), so a chdir here does not
// move the rest of the process.
func privateMountNS() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the probe mount namespace private: %w", err)
	}
	return nil
}

func runJob(j *job, nsErr error) (r Result) {
	if nsErr != nil {
		// Not a verdict on any filesystem: the probe could not start.
		return Result{Reason: "cannot make a private mount namespace for the probe (needs CAP_SYS_ADMIN): " + nsErr.Error()}
	}
	if err := j.ctx.Err(); err != nil {
		return interrupted(err)
	}
	s := &session{job: j}
	defer func() {
		if p := recover(); p != nil {
			r = Result{Ran: true, Step: j.stepName(), Error: fmt.Sprintf("internal error: %v", p)}
		}
		if err := s.close(); err != nil {
			if r.Detail == nil {
				r.Detail = map[string]string{}
			}
			r.Detail["cleanup_error"] = err.Error()
		}
	}()
	return j.fn(s)
}
