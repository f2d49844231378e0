package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/userns"
	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/host"
)

// closeGrace bounds how long Close waits for probes that timed out or
// were interrupted to finish their cleanup.
const closeGrace = 2 * time.Second

// DefaultTimeout bounds each live probe. A healthy one takes about a
// millisecond; the bound is for a hung filesystem (an NFS server gone away)
// or a child that never starts.
const DefaultTimeout = 5 * time.Second

// The probe's user namespace maps container root to these host ids, as
// containerd's own check does (0:666:1). The group differs from the user so
// that a mapping applied to the wrong id shows.
const (
	MappedUID = 666
	MappedGID = 667
)

// Live runs the probes on the machine usernsctl runs on. It needs root
// (CAP_SYS_ADMIN). Results are memoized by Spec.Key() for the life of the
// prober; it is safe for concurrent use. Close releases the user namespace
// and waits for probes still cleaning up.
type Live struct {
	// Timeout bounds each probe; zero means DefaultTimeout.
	Timeout time.Duration

	h *host.Host

	mu     sync.Mutex
	memo   map[string]*call
	ns     *os.File // the probe user namespace, once one was made
	worker *worker  // the current private-mount-namespace thread
	closed bool
	quit   chan struct{}  // closed by Close: idle workers leave at once
	busy   sync.WaitGroup // workers still running
}

type call struct {
	done chan struct{}
	res  Result
	// retry is set when the run was interrupted by its caller's context:
	// the result says nothing about the host, so waiters try again.
	retry bool
}

// NewLive returns a live prober for h, which must be the live host.
func NewLive(h *host.Host) *Live {
	return &Live{h: h, memo: map[string]*call{}, quit: make(chan struct{})}
}

func (l *Live) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return DefaultTimeout
}

// Probe implements Prober.
func (l *Live) Probe(ctx context.Context, s Spec) Result {
	key := s.Key()
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return Result{Reason: "the prober was closed"}
		}
		c, ok := l.memo[key]
		if !ok {
			c = &call{done: make(chan struct{})}
			l.memo[key] = c
			l.mu.Unlock()
			c.res = l.run(ctx, s)
			if !c.res.Ran && ctx.Err() != nil {
				c.retry = true
				l.mu.Lock()
				delete(l.memo, key)
				l.mu.Unlock()
			}
			close(c.done)
			return c.res
		}
		l.mu.Unlock()
		select {
		case <-c.done:
			if c.retry && ctx.Err() == nil {
				continue
			}
			return c.res
		case <-ctx.Done():
			return interrupted(ctx.Err())
		}
	}
}

func interrupted(err error) Result {
	return Result{Reason: "interrupted before it finished: " + err.Error()}
}

func (l *Live) run(ctx context.Context, s Spec) Result {
	start := time.Now()
	var r Result
	switch s.Kind {
	case SelfUserNS:
		r = l.selfUserNS()
	case UserNS:
		r = l.userNS(ctx)
	case Idmap, OverlayIdmap, TmpfsIdmap:
		r = l.mountProbe(ctx, s)
	default:
		return Result{Reason: fmt.Sprintf("unknown probe kind %q", s.Kind)}
	}
	if r.Ran {
		if r.Detail == nil {
			r.Detail = map[string]string{}
		}
		r.Detail["elapsed"] = time.Since(start).Round(time.Microsecond).String()
	}
	return r
}

func (l *Live) mountProbe(ctx context.Context, s Spec) Result {
	if s.Kind != TmpfsIdmap && (s.Path == "" || !filepath.IsAbs(s.Path)) {
		return Result{Reason: fmt.Sprintf("probe %s needs an absolute path, got %q", s.Kind, s.Path)}
	}
	u := l.Probe(ctx, Spec{Kind: UserNS})
	if !u.Ran {
		return Result{Reason: "needs a user namespace to map with, and that probe did not run: " + u.Reason}
	}
	if !u.OK {
		return Result{Reason: "needs a user namespace to map with, and creating one failed: " + u.Error}
	}
	l.mu.Lock()
	ns := l.ns
	l.mu.Unlock()
	if ns == nil {
		return Result{Reason: "the prober was closed"}
	}
	return l.inMountNS(ctx, func(ss *session) Result {
		switch s.Kind {
		case Idmap:
			return ss.idmap(s.Path, int(ns.Fd()))
		case OverlayIdmap:
			return ss.overlayIdmap(s.Path, int(ns.Fd()))
		default:
			return ss.tmpfsIdmap(int(ns.Fd()))
		}
	})
}

func (l *Live) selfUserNS() Result {
	r := Result{Ran: true, OK: userns.RunningInUserNS(), Detail: map[string]string{}}
	if b, err := l.h.ReadFile("/proc/self/uid_map"); err == nil {
		r.Detail["uid_map"] = mapText(b)
	}
	return r
}

// mapText normalizes a uid_map/gid_map: one "inside outside count" per
// line, fields single-spaced, lines joined with "; ".
func mapText(b []byte) string {
	var lines []string
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(ln); len(f) > 0 {
			lines = append(lines, strings.Join(f, " "))
		}
	}
	return strings.Join(lines, "; ")
}

// failure builds the result of a probe that ran and failed at step.
func failure(step string, err error, detail map[string]string) Result {
	r := Result{Ran: true, Step: step, Error: err.Error(), Detail: detail}
	var errno unix.Errno
	if errors.As(err, &errno) {
		r.Errno = unix.ErrnoName(errno)
	}
	return r
}

// Close releases the probe user namespace and waits (boundedly) for
// probes that are still cleaning up after a timeout or an interruption.
// Later probes answer "closed".
func (l *Live) Close() error {
	l.mu.Lock()
	if !l.closed {
		close(l.quit)
	}
	l.closed = true
	ns := l.ns
	l.ns = nil
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.busy.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-time.After(closeGrace):
		err = fmt.Errorf("probes still running %s after Close (a filesystem under test does not answer)", closeGrace)
	}
	// A probe stuck in the kernel may still use the namespace's descriptor
	// number; closing it then could hand the number to another file.
	if ns != nil && err == nil {
		ns.Close()
	}
	return err
}
