package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/host"
)

// signalDirEnv makes the test binary a process that is interrupted by a
// signal in the middle of a probe (see TestLiveSignalCleansUp).
const signalDirEnv = "USERNSCTL_PROBE_TEST_SIGNAL_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(signalDirEnv); dir != "" {
		signalVictim(dir)
		return
	}
	os.Exit(m.Run())
}

// signalVictim starts an overlay probe on dir and parks it after its
// mounts are in place, waiting for the parent's signal.
func signalVictim(dir string) {
	testHook = func(step string) {
		if step == "stat" {
			fmt.Println("ready")
			time.Sleep(time.Minute)
		}
	}
	l := NewLive(host.Live())
	l.Timeout = 2 * time.Minute
	r := l.Probe(context.Background(), Spec{Kind: OverlayIdmap, Path: dir})
	fmt.Printf("the probe was not interrupted: %+v\n", r)
	os.Exit(3)
}

func needRoot(t testing.TB) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("live probes need root (CAP_SYS_ADMIN); running as uid %d", uid)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot tell whether CAP_SYS_ADMIN is held: %v", err)
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "CapEff:"); ok {
			var caps uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &caps); err == nil && caps&(1<<unix.CAP_SYS_ADMIN) == 0 {
				t.Skipf("live probes need CAP_SYS_ADMIN; root here has CapEff %s", strings.TrimSpace(v))
			}
		}
	}
}

func newLive(t testing.TB) *Live {
	t.Helper()
	l := NewLive(host.Live())
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// mountTable is the host's mount table as a set of "ID mountpoint".
func mountTable(t testing.TB) map[string]bool {
	t.Helper()
	ms, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, m := range ms {
		set[fmt.Sprintf("%d %s", m.ID, m.Mountpoint)] = true
	}
	return set
}

// sameMounts compares the mount table with before. The machine is shared
// (other tests start daemons that mount), so changes are counted only
// where a probe could have made them: every probe mount lies in a
// scratch directory (ScratchPrefix), and the test's own directories are
// counted too. Other changes are logged.
func sameMounts(t testing.TB, before map[string]bool, when string, own ...string) {
	t.Helper()
	after := mountTable(t)
	ours := func(k string) bool {
		_, mp, _ := strings.Cut(k, " ")
		if strings.Contains(mp, "/"+ScratchPrefix) {
			return true
		}
		for _, d := range own {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				return true
			}
		}
		return false
	}
	var added, gone, other []string
	for k := range after {
		if !before[k] {
			if ours(k) {
				added = append(added, k)
			} else {
				other = append(other, "+"+k)
			}
		}
	}
	for k := range before {
		if !after[k] {
			if ours(k) {
				gone = append(gone, k)
			} else {
				other = append(other, "-"+k)
			}
		}
	}
	if len(other) > 0 {
		t.Logf("%s: mount table changes by other processes, not probes: %v", when, other)
	}
	if len(added)+len(gone) > 0 {
		sort.Strings(added)
		sort.Strings(gone)
		t.Fatalf("%s: mount table changed: added %v, gone %v", when, added, gone)
	}
}

// scratchIn lists probe scratch directories left in dir.
func scratchIn(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ScratchPrefix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func noScratch(t testing.TB, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if left := scratchIn(t, d); len(left) > 0 {
			t.Fatalf("scratch directories left behind: %v", left)
		}
	}
}

// mountAt mounts a fresh filesystem of fstype on dir for the test.
func mountAt(t testing.TB, fstype, dir string) { mountFlags(t, fstype, dir, 0) }

func mountFlags(t testing.TB, fstype, dir string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(fstype, dir, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", fstype, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// hostFSType is the type of the host mount holding dir.
func hostFSType(t testing.TB, dir string) string {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.ParentsFilter(dir))
	if err != nil || len(ms) == 0 {
		t.Fatalf("no mount holds %s: %v", dir, err)
	}
	best := ms[0]
	for _, m := range ms {
		if len(m.Mountpoint) > len(best.Mountpoint) {
			best = m
		}
	}
	return best.FSType
}

func wantOK(t testing.TB, s Spec, r Result) {
	t.Helper()
	if !r.Ran || !r.OK {
		t.Fatalf("%s: want a probe that ran and succeeded, got %+v", s.Key(), r)
	}
}

func wantMapped(t testing.TB, s Spec, r Result) {
	t.Helper()
	want := fmt.Sprintf("%d:%d", MappedUID, MappedGID)
	if r.Detail["owner"] != want || r.Detail["want"] != want {
		t.Fatalf("%s: owner through the idmapped mount %q (want %q): %+v", s.Key(), r.Detail["owner"], want, r)
	}
}

func TestLiveUserNS(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	s := Spec{Kind: UserNS}
	r := l.Probe(context.Background(), s)
	wantOK(t, s, r)
	if r.Detail["uid_map"] != "0 666 1" || r.Detail["gid_map"] != "0 667 1" {
		t.Errorf("maps read back from the child: uid %q gid %q", r.Detail["uid_map"], r.Detail["gid_map"])
	}
	var mine unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &mine); err != nil {
		t.Fatal(err)
	}
	if r.Detail["userns_inode"] == fmt.Sprint(mine.Ino) || r.Detail["userns_inode"] == "" {
		t.Errorf("child namespace inode %q, ours %d", r.Detail["userns_inode"], mine.Ino)
	}
	// The child was reaped: this process has no children left.
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); !errors.Is(err, unix.ECHILD) {
		t.Errorf("wait4 after the probe: %v, want ECHILD (an unreaped child)", err)
	}
	// The namespace descriptor outlives the child.
	var st unix.Stat_t
	if err := unix.Fstat(int(l.ns.Fd()), &st); err != nil || fmt.Sprint(st.Ino) != r.Detail["userns_inode"] {
		t.Errorf("kept namespace descriptor: inode %d, err %v", st.Ino, err)
	}
}

func TestLiveIdmap(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	dir := t.TempDir()
	s := Spec{Kind: Idmap, Path: dir}
	r := l.Probe(context.Background(), s)
	wantOK(t, s, r)
	wantMapped(t, s, r)
	if r.Detail["method"] != "scratch" {
		t.Errorf("method %q: a directory inside a filesystem gets a scratch directory", r.Detail["method"])
	}
	if !strings.Contains(","+r.Detail["mount_options"]+",", ",idmapped,") {
		t.Errorf("mount options %q lack idmapped", r.Detail["mount_options"])
	}
	if want := hostFSType(t, dir); r.Detail["fstype"] != want {
		t.Errorf("fstype %q, the host says %q", r.Detail["fstype"], want)
	}
	noScratch(t, dir, filepath.Dir(dir))
}

func TestLiveIdmapMountRootIsNotWritten(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	dir := t.TempDir()
	mountAt(t, "tmpfs", dir)
	s := Spec{Kind: Idmap, Path: dir}
	r := l.Probe(context.Background(), s)
	wantOK(t, s, r)
	wantMapped(t, s, r) // the tmpfs root is owned by root
	if r.Detail["method"] != "clone" || r.Detail["fstype"] != "tmpfs" {
		t.Errorf("method %q fstype %q: a mount root is cloned as it is", r.Detail["method"], r.Detail["fstype"])
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the probe wrote into the mount under test: %v", ents)
	}
	noScratch(t, os.TempDir())
}

func TestLiveIdmapMissingPath(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	dir := t.TempDir()
	s := Spec{Kind: Idmap, Path: filepath.Join(dir, "no", "such")}
	r := l.Probe(context.Background(), s)
	wantOK(t, s, r)
	real, _ := filepath.EvalSymlinks(dir)
	if r.Detail["missing"] != "true" || r.Detail["dir"] != real || r.Detail["path"] != s.Path {
		t.Errorf("detail %v: want the nearest existing directory %s, marked missing", r.Detail, real)
	}
}

// ramfs does not support idmapped mounts: the real negative.
func TestLiveIdmapRamfsFails(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	dir := t.TempDir()
	mountAt(t, "ramfs", dir)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Spec{
		{Kind: Idmap, Path: dir},                       // mount root: cloned
		{Kind: Idmap, Path: filepath.Join(dir, "sub")}, // scratch beside it, on ramfs
		{Kind: OverlayIdmap, Path: filepath.Join(dir, "sub")},
	} {
		r := l.Probe(context.Background(), s)
		if !r.Ran || r.OK || r.Errno != "EINVAL" || r.Step != "mount_setattr" {
			t.Errorf("%s: want mount_setattr EINVAL, got %+v", s.Key(), r)
		}
		if r.Detail["fstype"] != "ramfs" {
			t.Errorf("%s: fstype %q, want ramfs", s.Key(), r.Detail["fstype"])
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("ramfs holds %d entries after the probes, want only sub", len(ents))
	}
}

// Nothing can be written on a read-only filesystem: the idmap probe
// clones it as it is; the overlay probe, which needs an upper directory,
// does not run rather than blame idmap support.
func TestLiveReadOnlyFilesystem(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	dir := t.TempDir()
	mountFlags(t, "tmpfs", dir, unix.MS_RDONLY)
	s := Spec{Kind: Idmap, Path: filepath.Join(dir, "missing")}
	r := l.Probe(context.Background(), s)
	wantOK(t, s, r)
	if r.Detail["method"] != "clone" {
		t.Errorf("method %q on a read-only filesystem", r.Detail["method"])
	}
	s = Spec{Kind: OverlayIdmap, Path: dir}
	r = l.Probe(context.Background(), s)
	if r.Ran || !strings.Contains(r.Reason, "cannot create a scratch directory") || !strings.Contains(r.Reason, "read-only") {
		t.Errorf("%s on a read-only filesystem: %+v", s.Key(), r)
	}
}

func TestLiveOverlayIdmap(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	cwd, _ := os.Getwd()
	dir := t.TempDir()
	s := Spec{Kind: OverlayIdmap, Path: dir}
	r := l.Probe(context.Background(), s)
	wantOK(t, s, r)
	wantMapped(t, s, r)
	if now, _ := os.Getwd(); now != cwd {
		t.Errorf("the process's cwd moved from %s to %s", cwd, now)
	}
	noScratch(t, dir, filepath.Dir(dir))
}

func TestLiveTmpfsIdmap(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	s := Spec{Kind: TmpfsIdmap}
	r := l.Probe(context.Background(), s)
	wantOK(t, s, r)
	wantMapped(t, s, r)
	if !strings.Contains(r.Detail["mount_options"], "idmapped") {
		t.Errorf("mount options %q lack idmapped", r.Detail["mount_options"])
	}
}

func TestLiveSelfUserNS(t *testing.T) {
	needRoot(t)
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	initial := mapText(b) == "0 0 4294967295"
	r := newLive(t).Probe(context.Background(), Spec{Kind: SelfUserNS})
	if !r.Ran || r.OK == initial {
		t.Fatalf("self-userns %+v, but /proc/self/uid_map is %q", r, mapText(b))
	}
}

func TestLiveMemoizedAndConcurrent(t *testing.T) {
	needRoot(t)
	l := newLive(t)
	var runs atomic.Int32
	testHook = func(step string) {
		if step == "scratch" {
			runs.Add(1)
		}
	}
	t.Cleanup(func() { testHook = nil })
	s := Spec{Kind: Idmap, Path: t.TempDir()}
	var wg sync.WaitGroup
	res := make([]Result, 16)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = l.Probe(context.Background(), s)
		}()
	}
	wg.Wait()
	for _, r := range res {
		wantOK(t, s, r)
		if r.Detail["elapsed"] != res[0].Detail["elapsed"] {
			t.Fatal("concurrent callers got different runs")
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the probe ran %d times for one key", n)
	}
}

// A full probe set, a failing probe, an interrupted one and a timed-out
// one leave the host's mount table and directories as they were.
func TestLiveMountTableUnchanged(t *testing.T) {
	needRoot(t)
	ramfs := t.TempDir()
	mountAt(t, "ramfs", ramfs) // before the snapshot: the test's own mount
	dir := t.TempDir()
	before := mountTable(t)

	l := NewLive(host.Live())
	specs := []Spec{
		{Kind: UserNS}, {Kind: SelfUserNS}, {Kind: TmpfsIdmap},
		{Kind: OverlayIdmap, Path: dir}, {Kind: Idmap, Path: dir},
		{Kind: Idmap, Path: ramfs}, // fails: EINVAL
	}
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := l.Probe(context.Background(), s)
			switch {
			case !r.Ran:
				t.Errorf("%s did not run: %+v", s.Key(), r)
			case s.Kind != SelfUserNS && r.OK != (s.Path != ramfs):
				t.Errorf("%s: %+v", s.Key(), r)
			}
		}()
	}
	wg.Wait()

	// Interrupted by its caller after the idmapped mount is attached.
	ctx, cancel := context.WithCancel(context.Background())
	testHook = func(step string) {
		if step == "stat" {
			cancel()
		}
	}
	t.Cleanup(func() { testHook = nil })
	if r := l.Probe(ctx, Spec{Kind: OverlayIdmap, Path: filepath.Join(dir, "x")}); r.Ran || !strings.Contains(r.Reason, "interrupted") {
		t.Errorf("interrupted probe: %+v", r)
	}
	testHook = nil
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Timed out while its mounts are attached.
	slow := NewLive(host.Live())
	slow.Timeout = 200 * time.Millisecond
	testHook = func(step string) {
		if step == "stat" {
			time.Sleep(500 * time.Millisecond)
		}
	}
	r := slow.Probe(context.Background(), Spec{Kind: Idmap, Path: dir})
	if !r.Ran || r.OK || r.Errno != "ETIMEDOUT" || r.Step != "stat" {
		t.Errorf("timed-out probe: %+v", r)
	}
	if err := slow.Close(); err != nil { // waits for the probe to clean up
		t.Fatal(err)
	}
	testHook = nil

	sameMounts(t, before, "after the probes", dir, ramfs)
	noScratch(t, dir, filepath.Dir(dir), os.TempDir())
	if ents, _ := os.ReadDir(ramfs); len(ents) != 0 {
		t.Errorf("ramfs not left empty: %v", ents)
	}
}

// Cancelling at every step of every mount probe cleans up completely.
func TestLiveInterruptAtEveryStep(t *testing.T) {
	needRoot(t)
	steps := []string{"resolve", "scratch", "mkdir", "create", "chdir", "mount tmpfs",
		"open_tree", "mount_setattr", "move_mount", "mount overlay", "stat", "mountinfo"}
	base := t.TempDir()
	before := mountTable(t)
	t.Cleanup(func() { testHook = nil })
	for _, kind := range []string{Idmap, OverlayIdmap, TmpfsIdmap} {
		for _, step := range steps {
			l := NewLive(host.Live())
			if r := l.Probe(context.Background(), Spec{Kind: UserNS}); !r.OK {
				t.Fatalf("userns: %+v", r)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var hit atomic.Bool
			testHook = func(s string) {
				if s == step {
					hit.Store(true)
					cancel()
				}
			}
			s := Spec{Kind: kind}
			if kind != TmpfsIdmap {
				s.Path = filepath.Join(base, "t")
			}
			r := l.Probe(ctx, s)
			testHook = nil
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			cancel()
			if hit.Load() && (r.Ran || !strings.Contains(r.Reason, "interrupted")) {
				t.Errorf("%s cancelled at %s: %+v", kind, step, r)
			}
			if !hit.Load() && !r.OK {
				t.Errorf("%s (step %s not reached): %+v", kind, step, r)
			}
			sameMounts(t, before, kind+" cancelled at "+step, base)
			noScratch(t, base, os.TempDir())
		}
	}
}

// SIGTERM or SIGINT in the middle of a probe (overlay and idmapped lower
// mounted) removes the scratch directory and kills the process by that
// signal; the mounts never reach the host's table.
func TestLiveSignalCleansUp(t *testing.T) {
	needRoot(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			base := t.TempDir()
			target := filepath.Join(base, "target")
			if err := os.Mkdir(target, 0o755); err != nil {
				t.Fatal(err)
			}
			before := mountTable(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), signalDirEnv+"="+target)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || line != "ready\n" {
				t.Fatalf("victim said %q, %v", line, err)
			}
			if left := scratchIn(t, base); len(left) != 1 {
				t.Fatalf("mid-probe scratch directories: %v, want one", left)
			}
			sameMounts(t, before, "mid-probe", base) // the private namespace at work
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != sig {
				t.Fatalf("victim ended with %v (%v), want killed by %v", cmd.ProcessState, err, sig)
			}
			noScratch(t, base)
			sameMounts(t, before, "after the signal", base)
		})
	}
}
