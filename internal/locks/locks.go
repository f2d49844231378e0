// Package locks takes the locks that keep usernsctl from interleaving with
// itself and with shadow-utils (useradd, usermod, groupadd, vipw, ...).
//
// Three kinds, always taken in this order and released in reverse:
//
//  1. Tool: an flock(2) on a file in usernsctl's state directory, so two
//     applies or reverts on one host (or one --root tree) run one after
//     the other. The kernel drops it when the process dies.
//  2. Pwd: /etc/.pwd.lock, the lock glibc's lckpwdf(3) takes with a
//     blocking fcntl(2) write lock. shadow-utils built against glibc calls
//     lckpwdf before its first per-file lock in every release except 4.6
//     (2018, where it was disabled) and except with --prefix; musl's
//     lckpwdf does nothing. We take it with an open-file-description lock
//     (F_OFD_SETLK), which conflicts with glibc's process-associated lock
//     but, unlike it, also with another goroutine of this process.
//  3. File: shadow's own lock for /etc/subuid and friends, the one every
//     shadow release takes (commonio_lock): write our pid to FILE.<pid>,
//     hard-link it to FILE.lock (link(2) fails if the lock exists, so
//     exactly one process wins), check the link count is 2. A FILE.lock
//     whose pid is not running is stale: remove it and try again. It is
//     the only lock a shadow 4.6 or a --prefix run honours, and with
//     lckpwdf shadow tries it once without waiting, so holding the Pwd
//     lock while we hold these makes a concurrent useradd wait instead of
//     fail.
//
// shadow 4.14's release candidates briefly replaced FILE.lock with fcntl
// locks; that was reverted before 4.14.0, so no release uses it.
//
// Every wait is bounded (15 s by default, as shadow's retries and glibc's
// alarm are) and a timeout names the holder: "/etc/subuid is locked by pid
// 4242 (usermod)".
package locks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/inroot"
)

// DefaultTimeout is how long a lock is waited for.
const DefaultTimeout = 15 * time.Second

// PwdLock is glibc's lckpwdf lock file.
const PwdLock = "/etc/.pwd.lock"

// ShadowFiles are the files shadow-utils locks, in the order useradd locks
// them.
var ShadowFiles = []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/subuid", "/etc/subgid"}

// IsShadowFile reports whether shadow-utils locks host path p.
func IsShadowFile(p string) bool { return slices.Contains(ShadowFiles, path.Clean(p)) }

// Lock is one held lock.
type Lock struct {
	path    string // host path of the lock file
	release func() error
}

// Path is the host path of the lock file.
func (l *Lock) Path() string { return l.path }

// Release drops the lock. It is safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.release == nil {
		return nil
	}
	f := l.release
	l.release = nil
	return f()
}

// BusyError is a lock that stayed held by someone else until the timeout.
type BusyError struct {
	Path   string        // host path of the lock file
	Target string        // what the lock protects, for the message
	PID    int           // holder, 0 when unknown
	Comm   string        // holder's command name, "" when unknown
	Waited time.Duration // how long we waited
	Detail string        // why the lock could not be taken, when not a live holder
}

func (e *BusyError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "pid " + strconv.Itoa(e.PID)
		if e.Comm != "" {
			who += " (" + e.Comm + ")"
		}
	}
	msg := fmt.Sprintf("%s is locked by %s; gave up after %s", e.Target, who, e.Waited.Round(time.Millisecond))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Tool takes usernsctl's own lock: an flock on host path p (created 0600
// in an existing directory). Our pid is written into it for the message
// another usernsctl shows while it waits.
func Tool(ctx context.Context, r *inroot.Root, p string, timeout time.Duration) (*Lock, error) {
	dir, base := path.Split(p)
	d, err := r.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	err = wait(ctx, timeout, func() (bool, error) {
		switch err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err {
		case nil:
			return true, nil
		case unix.EWOULDBLOCK, unix.EINTR:
			return false, nil
		default:
			return false, &fs.PathError{Op: "flock", Path: p, Err: err}
		}
	})
	if err != nil {
		if errors.Is(err, errTimeout) {
			pid := readPID(f)
			err = &BusyError{Path: p, Target: "usernsctl's state (" + p + ")", PID: pid, Comm: comm(pid), Waited: timeout,
				Detail: "another usernsctl apply or revert is running on this host"}
		}
		f.Close()
		return nil, err
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{path: p, release: f.Close}, nil
}

// Pwd takes glibc's lckpwdf lock, /etc/.pwd.lock under the root.
func Pwd(ctx context.Context, r *inroot.Root, timeout time.Duration) (*Lock, error) {
	dir, base := path.Split(PwdLock)
	d, err := r.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	// glibc opens it O_WRONLY|O_CREAT, mode 0600.
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: PwdLock, Err: err}
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	err = wait(ctx, timeout, func() (bool, error) {
		switch err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk); err {
		case nil:
			return true, nil
		case unix.EAGAIN, unix.EACCES, unix.EINTR:
			return false, nil
		default:
			return false, &fs.PathError{Op: "lock", Path: PwdLock, Err: err}
		}
	})
	if err != nil {
		if errors.Is(err, errTimeout) {
			be := &BusyError{Path: PwdLock, Target: "the account files (" + PwdLock + ", lckpwdf)", Waited: timeout}
			probe := unix.Flock_t{Type: unix.F_WRLCK}
			// A glibc holder's pid is reported; an OFD holder's is -1.
			if unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &probe) == nil && probe.Pid > 0 {
				be.PID = int(probe.Pid)
				be.Comm = comm(be.PID)
			}
			err = be
		}
		unix.Close(fd)
		return nil, err
	}
	return &Lock{path: PwdLock, release: func() error { return unix.Close(fd) }}, nil
}

// File takes shadow-utils' lock on host path p: p + ".lock".
func File(ctx context.Context, r *inroot.Root, p string, timeout time.Duration) (*Lock, error) {
	p = path.Clean(p)
	dir, base := path.Split(p)
	d, err := r.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	dfd := int(d.Fd())
	lockName := base + ".lock"
	mine := base + "." + strconv.Itoa(os.Getpid())

	removeStaleTemps(d, base)
	var holder int
	var detail string
	var ino uint64
	err = wait(ctx, timeout, func() (bool, error) {
		// FILE.<pid> is per process: goroutines take turns with it.
		linkMu.Lock()
		defer linkMu.Unlock()
		ok, pid, why, in, err := tryLink(dfd, mine, lockName)
		holder, detail, ino = pid, why, in
		return ok, err
	})
	if err != nil {
		if errors.Is(err, errTimeout) {
			if detail == "" && holder <= 0 {
				detail = "if no useradd, usermod or vipw is running, remove " + dir + lockName
			}
			err = &BusyError{Path: dir + lockName, Target: p, PID: holder, Comm: comm(holder), Waited: timeout, Detail: detail}
		} else {
			err = fmt.Errorf("locking %s: %w", p, err)
		}
		return nil, err
	}
	release := func() error {
		d, err := r.OpenDir(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		// Remove the lock only if it is still the file we linked: a
		// lock broken and retaken by someone else is theirs.
		var st unix.Stat_t
		if err := unix.Fstatat(int(d.Fd()), lockName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "unlock", Path: dir + lockName, Err: err}
		}
		if st.Ino != ino {
			return fmt.Errorf("unlock %s%s: the lock was taken over by another process", dir, lockName)
		}
		if err := unix.Unlinkat(int(d.Fd()), lockName, 0); err != nil {
			return &fs.PathError{Op: "unlock", Path: dir + lockName, Err: err}
		}
		return nil
	}
	return &Lock{path: dir + lockName, release: release}, nil
}

var linkMu sync.Mutex

// removeStaleTemps deletes FILE.<pid> files left by a locker (usernsctl
// or shadow-utils: both write "<pid>\0") that was killed between creating
// and unlinking it. Only files whose content is exactly their own name's
// pid (or nothing: killed before the write), and whose pid is dead, go:
// anything else is not a lock temp.
func removeStaleTemps(d *os.File, base string) {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return
	}
	dfd := int(d.Fd())
	for _, n := range names {
		suffix, ok := strings.CutPrefix(n, base+".")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(suffix)
		if err != nil || pid <= 0 || strconv.Itoa(pid) != suffix || alive(pid) {
			continue
		}
		fd, err := unix.Openat(dfd, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		buf := make([]byte, 32)
		k, _ := unix.Read(fd, buf)
		unix.Close(fd)
		if k == 0 || k > 0 && string(buf[:k]) == suffix+"\x00" {
			unix.Unlinkat(dfd, n, 0)
		}
	}
}

// tryLink makes one attempt at shadow's link lock. It returns ok when the
// lock is ours, else the live holder's pid or why the lock is unusable.
func tryLink(dfd int, mine, lockName string) (ok bool, holder int, why string, ino uint64, err error) {
	// Exactly what shadow writes: the decimal pid and a NUL.
	fd, err := unix.Openat(dfd, mine, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, 0, "", 0, &fs.PathError{Op: "create", Path: mine, Err: err}
	}
	defer unix.Unlinkat(dfd, mine, 0)
	_, werr := unix.Write(fd, append([]byte(strconv.Itoa(os.Getpid())), 0))
	if werr == nil {
		werr = unix.Fdatasync(fd)
	}
	unix.Close(fd)
	if werr != nil {
		return false, 0, "", 0, &fs.PathError{Op: "write", Path: mine, Err: werr}
	}
	for attempt := 0; attempt < 2; attempt++ {
		err := unix.Linkat(dfd, mine, dfd, lockName, 0)
		if err == nil {
			var st unix.Stat_t
			if err := unix.Fstatat(dfd, mine, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return false, 0, "", 0, err
			}
			if st.Nlink != 2 {
				// Someone else linked to our file: not a clean lock.
				unix.Unlinkat(dfd, lockName, 0)
				return false, 0, fmt.Sprintf("lock file has %d links", st.Nlink), 0, nil
			}
			return true, 0, "", st.Ino, nil
		}
		if err != unix.EEXIST {
			return false, 0, "", 0, &fs.PathError{Op: "link", Path: lockName, Err: err}
		}
		pid, bad := lockHolder(dfd, lockName)
		if bad != "" {
			return false, 0, bad, 0, nil
		}
		if pid == 0 { // vanished between link and read: try again
			continue
		}
		if alive(pid) {
			return false, pid, "", 0, nil
		}
		// Stale: its owner died without unlocking (a crash, a power cut).
		if err := unix.Unlinkat(dfd, lockName, 0); err != nil && err != unix.ENOENT {
			return false, pid, "", 0, &fs.PathError{Op: "remove stale lock", Path: lockName, Err: err}
		}
	}
	return false, 0, "", 0, nil
}

// lockHolder reads the pid in an existing lock file; bad says why it holds
// none. A missing file gives pid 0 and no complaint.
func lockHolder(dfd int, name string) (pid int, bad string) {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return 0, ""
	}
	if err != nil {
		return 0, fmt.Sprintf("cannot read %s: %v", name, err)
	}
	buf := make([]byte, 32)
	n, _ := unix.Read(fd, buf)
	unix.Close(fd)
	s := string(buf[:max(n, 0)])
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	pid, err = strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, fmt.Sprintf("%s holds no valid pid (%q); if no useradd, usermod or vipw is running, remove it", name, s)
	}
	return pid, ""
}

// alive reports whether pid is a running process. EPERM means it exists
// but is not ours to signal: alive.
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	return pid
}

// comm names a running process for messages. It reads this machine's
// /proc, not the host seam: lock holders are processes here even when the
// files live under --root.
func comm(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

var errTimeout = errors.New("timed out")

// wait calls try until it succeeds, fails, the context ends or timeout
// passes, backing off from 5 ms to 100 ms between attempts.
func wait(ctx context.Context, timeout time.Duration, try func() (bool, error)) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		ok, err := try()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		t := time.NewTimer(min(delay, time.Until(deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// Shadow takes the Pwd lock and then the File lock of every shadow file
// among paths, in useradd's order. Paths that are not shadow files are
// ignored. On error nothing stays held.
func Shadow(ctx context.Context, r *inroot.Root, paths []string, timeout time.Duration) ([]*Lock, error) {
	var files []string
	for _, f := range ShadowFiles {
		if slices.ContainsFunc(paths, func(p string) bool { return path.Clean(p) == f }) {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	var held []*Lock
	fail := func(err error) ([]*Lock, error) {
		ReleaseAll(held)
		return nil, err
	}
	l, err := Pwd(ctx, r, timeout)
	if err != nil {
		return fail(err)
	}
	held = append(held, l)
	for _, f := range files {
		l, err := File(ctx, r, f, timeout)
		if err != nil {
			return fail(err)
		}
		held = append(held, l)
	}
	return held, nil
}

// ReleaseAll releases locks in reverse order and returns the first error.
func ReleaseAll(held []*Lock) error {
	var first error
	for i := len(held) - 1; i >= 0; i-- {
		if err := held[i].Release(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
