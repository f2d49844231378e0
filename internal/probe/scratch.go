package probe

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ScratchPrefix starts the name of every scratch directory a probe makes.
const ScratchPrefix = ".usernsctl-probe-"

// errDying refuses new scratch directories once a signal is being handled.
var errDying = errors.New("usernsctl is being interrupted")

// scratch tracks the probes' scratch directories so that SIGINT, SIGTERM or
// SIGHUP arriving mid-probe removes them before the process dies. The
// handler is installed only while a scratch directory exists.
var scratch = &scratchSet{dirs: map[string]struct{}{}}

type scratchSet struct {
	mu       sync.Mutex
	dirs     map[string]struct{}
	creating int
	dying    bool
	sigs     chan os.Signal
	stop     chan struct{}
}

// make creates a private (0700) scratch directory in parent.
func (s *scratchSet) make(parent string) (string, error) {
	s.mu.Lock()
	if s.dying {
		s.mu.Unlock()
		return "", errDying
	}
	if len(s.dirs) == 0 && s.creating == 0 {
		s.watch()
	}
	s.creating++
	s.mu.Unlock()

	// Outside the lock: on a hung filesystem this can block, and the signal
	// handler must still be able to run.
	dir, err := os.MkdirTemp(parent, ScratchPrefix+"*")

	s.mu.Lock()
	defer s.mu.Unlock()
	s.creating--
	if err == nil {
		if s.dying {
			os.Remove(dir)
			return "", errDying
		}
		s.dirs[dir] = struct{}{}
	}
	s.unwatchIfIdle()
	return dir, err
}

// remove deletes a scratch directory (everything in it must be unmounted).
func (s *scratchSet) remove(dir string) error {
	err := os.RemoveAll(dir)
	s.mu.Lock()
	delete(s.dirs, dir)
	s.unwatchIfIdle()
	s.mu.Unlock()
	return err
}

// watch installs the signal handler; s.mu is held.
func (s *scratchSet) watch() {
	var sigs []os.Signal
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		// A signal the process was started with ignored (nohup, a
		// background job) stays ignored: Notify would enable it.
		if !signal.Ignored(sig) {
			sigs = append(sigs, sig)
		}
	}
	ch := make(chan os.Signal, 1)
	stop := make(chan struct{})
	signal.Notify(ch, sigs...)
	s.sigs, s.stop = ch, stop
	go func() {
		select {
		case sig := <-ch:
			s.die(sig)
		case <-stop:
			// A signal that arrived just before Stop is still ours.
			select {
			case sig := <-ch:
				s.die(sig)
			default:
			}
		}
	}()
}

// unwatchIfIdle removes the handler when no scratch directory is left;
// s.mu is held.
func (s *scratchSet) unwatchIfIdle() {
	if len(s.dirs) > 0 || s.creating > 0 || s.sigs == nil || s.dying {
		return
	}
	signal.Stop(s.sigs)
	close(s.stop)
	s.sigs, s.stop = nil, nil
}

// die removes every scratch directory, kills the probe children and
// re-raises sig with its default action. It runs on an ordinary goroutine,
// in the host's mount namespace, where no probe mount is visible: removing
// a directory cannot reach through a mount into another filesystem.
func (s *scratchSet) die(sig os.Signal) {
	s.mu.Lock()
	s.dying = true
	s.mu.Unlock()
	children.kill()
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		s.mu.Lock()
		dirs := make([]string, 0, len(s.dirs))
		for d := range s.dirs {
			dirs = append(dirs, d)
		}
		creating := s.creating
		s.mu.Unlock()
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
		if creating == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.mu.Lock()
	if s.sigs != nil {
		signal.Stop(s.sigs)
	}
	s.mu.Unlock()
	if n, ok := sig.(syscall.Signal); ok {
		_ = unix.Kill(unix.Getpid(), n)
	}
}
