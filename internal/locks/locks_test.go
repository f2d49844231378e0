package locks

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/inroot"
)

// TestMain doubles as a helper process: LOCKS_HELPER=posix takes a
// traditional fcntl write lock on the file named by LOCKS_FILE, exactly as
// glibc's lckpwdf does, says "locked", and holds it until stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("LOCKS_HELPER") == "posix" {
		f, err := os.OpenFile(os.Getenv("LOCKS_FILE"), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			panic(err)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
			panic(err)
		}
		os.Stdout.WriteString("locked\n")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func root(t *testing.T) (string, *inroot.Root) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := inroot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return dir, r
}

func busy(t *testing.T, err error) *BusyError {
	t.Helper()
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("want a BusyError, got %v", err)
	}
	return be
}

func TestToolSerialises(t *testing.T) {
	_, r := root(t)
	ctx := context.Background()
	l, err := Tool(ctx, r, "/etc/usernsctl.lock", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A second taker, even in this process, must wait and then say who
	// holds it.
	_, err = Tool(ctx, r, "/etc/usernsctl.lock", 150*time.Millisecond)
	be := busy(t, err)
	if be.PID != os.Getpid() || !strings.Contains(be.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("message does not name the holder: %v", be)
	}
	done := make(chan error)
	go func() {
		l2, err := Tool(ctx, r, "/etc/usernsctl.lock", 5*time.Second)
		if err == nil {
			l2.Release()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	l.Release()
	if err := <-done; err != nil {
		t.Fatalf("waiter did not get the lock after release: %v", err)
	}
}

func TestContextCancels(t *testing.T) {
	_, r := root(t)
	l, err := Tool(context.Background(), r, "/etc/usernsctl.lock", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Tool(ctx, r, "/etc/usernsctl.lock", time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// TestPwdConflictsWithLckpwdf: a process holding /etc/.pwd.lock the way
// glibc's lckpwdf does blocks us, and is named when we give up; while we
// hold it, that process cannot take it.
func TestPwdConflictsWithLckpwdf(t *testing.T) {
	dir, r := root(t)
	lockFile := filepath.Join(dir, "etc/.pwd.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCKS_HELPER=posix", "LOCKS_FILE="+lockFile)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("helper: %q", line)
	}
	_, err := Pwd(context.Background(), r, 200*time.Millisecond)
	be := busy(t, err)
	if be.PID != cmd.Process.Pid {
		t.Fatalf("holder pid %d, want %d: %v", be.PID, cmd.Process.Pid, be)
	}
	stdin.Close()
	cmd.Wait()

	l, err := Pwd(context.Background(), r, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	f, err := os.OpenFile(lockFile, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	// F_SETLK from this same process: a traditional lock still conflicts
	// with our open-file-description lock.
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err == nil {
		t.Fatal("lckpwdf-style lock succeeded while we hold .pwd.lock")
	}
	if fi, err := os.Stat(lockFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", fi, err)
	}
}

func TestFileLockFormat(t *testing.T) {
	dir, r := root(t)
	l, err := File(context.Background(), r, "/etc/subuid", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "etc/subuid.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(os.Getpid()) + "\x00"; string(b) != want {
		t.Fatalf("lock content %q, want %q (shadow's format)", b, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/subuid."+strconv.Itoa(os.Getpid()))); !os.IsNotExist(err) {
		t.Fatalf("temporary pid file left behind: %v", err)
	}
	// Held by us: a second attempt waits.
	_, err = File(context.Background(), r, "/etc/subuid", 100*time.Millisecond)
	busy(t, err)
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/subuid.lock")); !os.IsNotExist(err) {
		t.Fatalf("lock not removed: %v", err)
	}
}

func TestFileLockHeldByLiveProcess(t *testing.T) {
	dir, r := root(t)
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Skip("no sleep(1):", err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	lockFile := filepath.Join(dir, "etc/subuid.lock")
	os.WriteFile(lockFile, []byte(strconv.Itoa(sleep.Process.Pid)+"\x00"), 0o600)
	_, err := File(context.Background(), r, "/etc/subuid", 200*time.Millisecond)
	be := busy(t, err)
	want := "/etc/subuid is locked by pid " + strconv.Itoa(sleep.Process.Pid) + " (sleep)"
	if !strings.HasPrefix(be.Error(), want) {
		t.Fatalf("message %q, want it to start %q", be.Error(), want)
	}
	if b, _ := os.ReadFile(lockFile); string(b) != strconv.Itoa(sleep.Process.Pid)+"\x00" {
		t.Fatal("a live holder's lock was touched")
	}
}

func TestFileLockStale(t *testing.T) {
	dir, r := root(t)
	// A pid that certainly is not running: a child that has exited.
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	lockFile := filepath.Join(dir, "etc/subgid.lock")
	os.WriteFile(lockFile, []byte(strconv.Itoa(c.Process.Pid)+"\x00"), 0o600)
	l, err := File(context.Background(), r, "/etc/subgid", time.Second)
	if err != nil {
		t.Fatalf("stale lock not broken: %v", err)
	}
	defer l.Release()
	if b, _ := os.ReadFile(lockFile); string(b) != strconv.Itoa(os.Getpid())+"\x00" {
		t.Fatalf("lock now holds %q", b)
	}
}

func TestFileLockGarbage(t *testing.T) {
	dir, r := root(t)
	os.WriteFile(filepath.Join(dir, "etc/passwd.lock"), []byte("\x7fELF junk"), 0o600)
	_, err := File(context.Background(), r, "/etc/passwd", 100*time.Millisecond)
	be := busy(t, err)
	if !strings.Contains(be.Error(), "holds no valid pid") || !strings.Contains(be.Error(), "remove it") {
		t.Fatalf("unclear message: %v", be)
	}
}

func TestShadowOrderAndRelease(t *testing.T) {
	dir, r := root(t)
	held, err := Shadow(context.Background(), r, []string{"/etc/docker/daemon.json", "/etc/subgid", "/etc/subuid"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range held {
		got = append(got, l.Path())
	}
	if strings.Join(got, " ") != "/etc/.pwd.lock /etc/subuid.lock /etc/subgid.lock" {
		t.Fatalf("locks %v", got)
	}
	// A failure part-way releases what was taken.
	os.WriteFile(filepath.Join(dir, "etc/group.lock"), []byte("junk"), 0o600)
	if err := ReleaseAll(held); err != nil {
		t.Fatal(err)
	}
	if _, err := Shadow(context.Background(), r, []string{"/etc/subuid", "/etc/group"}, 100*time.Millisecond); err == nil {
		t.Fatal("expected busy")
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/subuid.lock")); !os.IsNotExist(err) {
		t.Fatal("subuid lock left held after a failed Shadow")
	}
}

// shadowTree writes a minimal account database for usermod.
func shadowTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
		"etc/group":  "root:x:0:\nalice:x:1000:\n",
		"etc/shadow": "root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n",
		"etc/subuid": "root:100000:65536\n",
		"etc/subgid": "root:100000:65536\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRealUsermodWaits runs shadow's usermod against a tree while we hold
// the locks: it must not touch /etc/subuid until we release, and both our
// edit and its edit must survive. --prefix honours only the FILE.lock;
// --root (chroot) goes through lckpwdf on /etc/.pwd.lock first.
func TestRealUsermodWaits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("usermod needs root")
	}
	if _, err := exec.LookPath("usermod"); err != nil {
		t.Skip("usermod is not installed")
	}
	for _, mode := range []string{"--prefix", "--root"} {
		t.Run(mode, func(t *testing.T) {
			dir, r := root(t)
			shadowTree(t, dir)
			subuid := filepath.Join(dir, "etc/subuid")
			held, err := Shadow(context.Background(), r, []string{"/etc/subuid"}, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(subuid)
			cmd := exec.Command("usermod", mode, dir, "-v", "300000-365535", "alice")
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if now, _ := os.ReadFile(subuid); string(now) != string(before) {
				t.Fatalf("usermod changed /etc/subuid while we held the lock:\n%s", now)
			}
			// Our read-modify-write, under the lock.
			if err := os.WriteFile(subuid, append(before, "dockremap:165536:65536\n"...), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := ReleaseAll(held); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("usermod: %v\n%s", err, out.String())
			}
			got, _ := os.ReadFile(subuid)
			for _, line := range []string{"root:100000:65536\n", "dockremap:165536:65536\n", "alice:300000:65536\n"} {
				if strings.Count(string(got), line) != 1 {
					t.Fatalf("%q not present exactly once:\n%s", line, got)
				}
			}
		})
	}
}

// A FILE.<pid> left by a locker killed mid-protocol (dead pid, content
// "<pid>\0") is cleaned up by the next lock; other files are not touched.
func TestStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	r, err := inroot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	dead := deadPID(t)
	stale := filepath.Join(dir, "etc", "subuid."+strconv.Itoa(dead))
	os.WriteFile(stale, append([]byte(strconv.Itoa(dead)), 0), 0o600)
	other := filepath.Join(dir, "etc", "subuid.12")
	os.WriteFile(other, []byte("not a lock temp"), 0o600)
	l, err := File(context.Background(), r, "/etc/subuid", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s left: %v", stale, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}
