package txn

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/host"
)

// The test binary is also the child process of the kill and concurrency
// tests: TXN_CHILD names what it does, on the tree in TXN_ROOT.
//
//	apply    commit the scenario plan
//	revert   revert
//	recover  Begin and Close: recover an interrupted run
//	append   append TXN_LINE to /etc/subuid under the locks
//
// TXN_KILL_AT=N makes it SIGKILL itself at the N-th crash point (see at);
// every point reached is appended to the file TXN_POINTS. TXN_WAIT makes it
// print "ready", wait for a line on stdin before starting, and print
// "done" when finished.
func TestMain(m *testing.M) {
	op := os.Getenv("TXN_CHILD")
	if op == "" {
		os.Exit(m.Run())
	}
	os.Exit(child(op))
}

func child(op string) int {
	killAt, _ := strconv.Atoi(os.Getenv("TXN_KILL_AT"))
	var points *os.File
	if p := os.Getenv("TXN_POINTS"); p != "" {
		points, _ = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	}
	n := 0
	hook = func(point string) {
		n++
		if points != nil {
			fmt.Fprintf(points, "%d %s\n", n, point)
		}
		if n == killAt {
			unix.Kill(os.Getpid(), unix.SIGKILL)
			select {}
		}
	}
	h, err := host.At(os.Getenv("TXN_ROOT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if os.Getenv("TXN_WAIT") != "" {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	ctx := context.Background()
	opt := Options{Timeout: time.Minute}
	switch op {
	case "apply":
		_, err = Commit(ctx, h, opt, scenarioPlan())
	case "revert":
		_, err = Revert(ctx, h, opt)
	case "recover":
		var tx *Tx
		if tx, err = Begin(ctx, h, opt); err == nil {
			err = tx.Close()
		}
	case "append":
		err = appendLine(ctx, h, opt, os.Getenv("TXN_LINE"))
	default:
		err = fmt.Errorf("unknown child op %q", op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if os.Getenv("TXN_WAIT") != "" {
		fmt.Println("done")
	}
	return 0
}

// appendLine is one "apply" of the concurrency test: read, plan, commit,
// all under the locks.
func appendLine(ctx context.Context, h *host.Host, opt Options, line string) error {
	tx, err := Begin(ctx, h, opt, "/etc/subuid")
	if err != nil {
		return err
	}
	defer tx.Close()
	old, err := tx.Read("/etc/subuid")
	if err != nil {
		return err
	}
	_, err = tx.Commit(Plan{{Path: "/etc/subuid", Old: old, New: append(bytes.Clone(old), line+"\n"...)}})
	return err
}

// The scenario: every kind of change apply and revert make.
var (
	bigOld = strings.Repeat("# padding so that a torn write would show\n", 2000)
	subOld = "root:100000:65536\nalice:165536:65536\n"
)

type fileState struct {
	exists bool
	data   string
	mode   os.FileMode
}

func absent() fileState                             { return fileState{} }
func present(s string) fileState                    { return fileState{exists: true, data: s, mode: 0o644} }
func presentMode(s string, m os.FileMode) fileState { return fileState{exists: true, data: s, mode: m} }

var scenario = []struct {
	path     string
	old, new fileState
}{
	{"/etc/subuid", present(subOld), present(subOld + "dockremap:231072:65536\n")},
	{"/etc/subgid", presentMode(subOld, 0o640), presentMode(subOld+"dockremap:231072:65536\n", 0o640)},
	{"/etc/docker/daemon.json", absent(), presentMode("{\n  \"userns-remap\": \"default\"\n}\n", 0o600)},
	{"/etc/containerd/conf.d/usernsctl.toml", absent(), present("version = 2\n[plugins.\"io.containerd.snapshotter.v1.overlayfs\"]\n  slow_chown = true\n")},
	{"/etc/sysctl.d/99-hardening.conf", present("user.max_user_namespaces = 0\n"), absent()},
	{"/etc/big.conf", present(bigOld), present(strings.ToUpper(bigOld))},
	{"/etc/emptied.conf", present("x = 1\n"), present("")},
}

func scenarioPlan() Plan {
	var p Plan
	for _, s := range scenario {
		c := Change{Path: s.path, Mode: s.new.mode}
		if s.old.exists {
			c.Old = []byte(s.old.data)
		}
		if s.new.exists {
			c.New = []byte(s.new.data)
		}
		p = append(p, c)
	}
	return p
}

// newTree builds a host tree holding the scenario's old state.
func newTree(t *testing.T) string {
	t.Helper()
	dir := scratch(t)
	for _, d := range []string{"etc/docker", "etc/sysctl.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range scenario {
		if s.old.exists {
			writeFile(t, dir, s.path, s.old.data, s.old.mode)
		}
	}
	return dir
}

// scratch is a temporary directory, on tmpfs when there is one: the kill
// tests observe process death, which the page cache survives, so fsync
// adds nothing they could see but time (the fsync order is tested on its
// own, with strace).
func scratch(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "txn-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func writeFile(t *testing.T, dir, p, data string, mode os.FileMode) {
	t.Helper()
	real := filepath.Join(dir, p)
	if err := os.WriteFile(real, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(real, mode); err != nil {
		t.Fatal(err)
	}
}

func stateOf(t *testing.T, dir, p string) fileState {
	t.Helper()
	real := filepath.Join(dir, p)
	fi, err := os.Lstat(real)
	if os.IsNotExist(err) {
		return absent()
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{exists: true, data: string(b), mode: fi.Mode()}
}

// states says, for each scenario file, "old" or "new", and fails the test
// for a file that is neither: torn, truncated, mixed or wrongly moded.
func states(t *testing.T, dir string) []string {
	t.Helper()
	out := make([]string, len(scenario))
	for i, s := range scenario {
		t.Run(s.path, func(t *testing.T) {

			got := stateOf(t, dir, s.path)
			switch got {
			case s.old:
				out[i] = "old"
			case s.new:
				out[i] = "new"
			default:
				t.Fatalf("%s is neither old nor new: exists=%v mode=%v %d bytes %q", s.path, got.exists, got.mode, len(got.data), trunc(got.data))
			}
		})
	}
	return out
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func allAre(t *testing.T, dir, want string) {
	t.Helper()
	for i, st := range states(t, dir) {
		if st != want {
			t.Fatalf("%s is %s, want every file %s", scenario[i].path, st, want)
		}
	}
}

func consistent(t *testing.T, dir string) string {
	t.Helper()
	st := states(t, dir)
	for i := range st {
		if st[i] != st[0] {
			t.Fatalf("after recovery files are mixed: %v", st)
		}
	}
	return st[0]
}

// leftovers lists files in the tree that no transaction should leave:
// temporary files and lock files (stale shadow pid files of a process
// killed while locking are shadow's own convention and allowed).
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var bad []string
	filepath.Walk(filepath.Join(dir, "etc"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		name := fi.Name()
		if strings.Contains(name, tempMarker) {
			bad = append(bad, p)
		}
		// A lock file whose process is gone is free by shadow's own rule
		// (the next locker removes it); one held by a live process after
		// the transaction ended is a leak.
		if strings.HasSuffix(name, ".lock") && name != ".pwd.lock" {
			b, _ := os.ReadFile(p)
			pid, _ := strconv.Atoi(strings.TrimRight(string(b), "\x00\n"))
			if pid <= 0 || unix.Kill(pid, 0) == nil {
				bad = append(bad, p)
			}
		}
		return nil
	})
	return bad
}

type childResult struct {
	killed bool
	out    string
}

// runChild runs the test binary as a child doing op on dir.
func runChild(t *testing.T, op, dir string, env ...string) childResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"TXN_CHILD=" + op, "TXN_ROOT=" + dir}, env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return childResult{killed: true, out: out.String()}
		}
	}
	if err != nil {
		t.Fatalf("child %s: %v\n%s", op, err, out.String())
	}
	return childResult{out: out.String()}
}

func hostAt(t *testing.T, dir string) *host.Host {
	t.Helper()
	h, err := host.At(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var testOpt = Options{Timeout: 10 * time.Second}
