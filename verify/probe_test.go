package verify

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/run"
)

func TestImageTar(t *testing.T) {
	exe, err := os.Open(os.Args[0]) // any file stands for the binary
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	fi, _ := exe.Stat()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := writeImageTar(p, exe); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	names := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = h
	}
	bin := names["usernsctl"]
	if bin == nil || bin.Size != fi.Size() || bin.Mode != 0o755 || bin.Uid != 0 {
		t.Fatalf("binary entry: %+v", bin)
	}
	for _, d := range []string{"proc/", "sys/", "dev/", "etc/", "probe/"} {
		if names[d] == nil || names[d].Typeflag != tar.TypeDir {
			t.Errorf("no directory %s", d)
		}
	}
	// The tar is never written over an existing file.
	if err := writeImageTar(p, exe); err == nil {
		t.Error("writeImageTar overwrote a file")
	}
}

// selfBinary refuses a dynamic binary (the image has no loader) and
// accepts a static one; the test binary is whichever the toolchain made.
func TestSelfBinary(t *testing.T) {
	f, err := selfBinary()
	if err != nil {
		if !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	defer f.Close()
	if off, _ := f.Seek(0, io.SeekCurrent); off != 0 {
		t.Errorf("returned at offset %d", off)
	}
}

// The bind-mount directory must be reachable by the remapped root: a
// temporary directory under a 0700 parent is refused with field case 17.
func TestBindParent(t *testing.T) {
	locked := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(filepath.Join(locked, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(locked, 0o700)
	t.Setenv("TMPDIR", filepath.Join(locked, "tmp"))
	if _, err := bindParent(); err == nil || !strings.Contains(err.Error(), "0700 directory") || !strings.Contains(err.Error(), locked) {
		t.Errorf("bindParent under 0700: %v", err)
	}
	open := t.TempDir()
	os.Chmod(open, 0o711)
	for d := open; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&1 == 0 {
			t.Skipf("%s is not searchable by others on this machine", d)
		}
	}
	t.Setenv("TMPDIR", open)
	if got, err := bindParent(); err != nil || got != open {
		t.Errorf("bindParent = %q, %v", got, err)
	}
}

// fakeRunner records commands and answers from a table.
type fakeRunner struct {
	calls []string
	fail  map[string]string // command line -> stderr of a failure
}

func (f *fakeRunner) Run(_ context.Context, argv ...string) (run.Output, error) {
	line := run.Line(argv)
	f.calls = append(f.calls, line)
	if msg, ok := f.fail[line]; ok {
		out := run.Output{Stderr: []byte(msg), Exit: 1}
		return out, &run.Error{Argv: argv, Output: out, Err: errors.New("exit status 1")}
	}
	return run.Output{}, nil
}

func (f *fakeRunner) Installed(string) bool { return true }

func TestCleanerRemovesEverythingOnce(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(d2, "f"), []byte("x"), 0o600)
	fr := &fakeRunner{fail: map[string]string{
		"docker rm --force --volumes c1": "Error: No such container: c1",
		"docker rmi --force img:1":       "Error response from daemon: conflict: unable to remove repository reference",
	}}
	c := &cleaner{env: &checks.Env{Run: fr}, container: "c1", image: "img:1", dirs: []string{d1, d2}}
	err := c.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "conflict") || strings.Contains(err.Error(), "No such container") {
		t.Errorf("cleanup error: %v", err)
	}
	want := []string{"docker rm --force --volumes c1", "docker rmi --force img:1"}
	if strings.Join(fr.calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls %q, want %q", fr.calls, want)
	}
	for _, d := range []string{d1, d2} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", d)
		}
	}
	if err := c.run(context.Background()); err != nil || len(fr.calls) != 2 {
		t.Errorf("second cleanup ran again: %v %q", err, fr.calls)
	}
}

func TestProbeCmdline(t *testing.T) {
	if !probeCmdline([]string{"/usernsctl", ChildCommand, "/probe", "n1"}, "n1") ||
		probeCmdline([]string{"/usernsctl", ChildCommand, "/probe", "n2"}, "n1") ||
		probeCmdline([]string{"/bin/sh"}, "n1") {
		t.Error("probeCmdline")
	}
}

func TestRunChild(t *testing.T) {
	dir := t.TempDir()
	if code := RunChild([]string{dir}, io.Discard); code != 2 {
		t.Errorf("usage exit %d", code)
	}
	if code := RunChild([]string{filepath.Join(dir, "missing"), "n"}, io.Discard); code != 1 {
		t.Errorf("unwritable dir exit %d", code)
	}
	done := make(chan int, 1)
	go func() { done <- RunChild([]string{dir, "n0nce"}, io.Discard) }()
	f := filepath.Join(dir, probeFileName)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(f); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child wrote no file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b, _ := os.ReadFile(f)
	if !strings.Contains(string(b), "nonce n0nce\n") || !strings.Contains(string(b), "uid_map ") {
		t.Errorf("file: %q", b)
	}
	// The file shows only once complete: the child has its signal handler
	// by then, so SIGTERM ends it instead of the test.
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not stop on SIGTERM")
	}
}

func TestLowerdirs(t *testing.T) {
	got := lowerdirs(`rw,lowerdir=/a\:b:/c,upperdir=/u,workdir=/w`)
	if strings.Join(got, "|") != "/a:b|/c" {
		t.Errorf("lowerdir= : %q", got)
	}
	got = lowerdirs(`rw,lowerdir+=/l1,lowerdir+=/l2,datadir+=/d`)
	if strings.Join(got, "|") != "/l1|/l2" {
		t.Errorf("lowerdir+= : %q", got)
	}
}

func TestNS(t *testing.T) {
	dir := tree(t, "containerd")
	env := checkstest.At(t, dir, checks.Containerd)
	rep := NS(context.Background(), env, []string{"6612", "6668", "6786", "nosuch"}, nil, []string{"usernsctl-e2e"})
	if rep.Schema != NSSchema || rep.Host.PID != 1 || len(rep.Processes) != 4 {
		t.Fatalf("report: %+v", rep)
	}
	user := func(i int) NSEntry { return *rep.Processes[i].ns("user") }
	if u := user(0); u.Shared == nil || *u.Shared || u.Inode != 4026532177 {
		t.Errorf("6612 user: %+v", u)
	}
	if u := user(1); u.Shared == nil || !*u.Shared {
		t.Errorf("6668 user: %+v", u)
	}
	if rep.Processes[3].Error == "" || !rep.Failed() {
		t.Error("an unknown container must be an error")
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{"HOST (PID 1)", "PID 6612 sleep", "4026532177 isolated", "uid_map 0 1310720 65536", `container "nosuch"`} {
		if !strings.Contains(out, s) {
			t.Errorf("text lacks %q:\n%s", s, out)
		}
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil || !strings.Contains(b.String(), `"shared_with_host": false`) {
		t.Errorf("json: %v\n%s", err, b.String())
	}

	// By container ID, through the recorded ctr output.
	rep = NS(context.Background(), env, []string{"userns"}, nil, []string{"usernsctl-e2e"})
	if p := rep.Processes[0]; p.PID != 6612 || p.Via != "ctr -n usernsctl-e2e task ls" || p.Container != "userns" {
		t.Errorf("by id: %+v", p)
	}
}

// Two containers of one pod share net, ipc and uts; ns says so.
func TestNSSharing(t *testing.T) {
	dir := tree(t, "containerd")
	for _, k := range []string{"net", "ipc", "uts"} {
		l := filepath.Join(dir, "proc/6786/ns", k)
		target, _ := os.Readlink(filepath.Join(dir, "proc/6612/ns", k))
		os.Remove(l)
		os.Symlink(target, l)
	}
	h, _ := host.At(dir)
	rep := NS(context.Background(), &checks.Env{Host: h, Run: run.None{}}, []string{"6612", "6786"}, nil, nil)
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "pids 6612, 6786 share ipc, net, uts") {
		t.Errorf("sharing:\n%s", b.String())
	}
}
