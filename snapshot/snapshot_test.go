package snapshot_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/usernsctl/usernsctl/cmd"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/snapshot"
)

type outcome struct {
	ID, Status, Message string
}

func checkJSON(t *testing.T, args ...string) map[string]outcome {
	t.Helper()
	var out, errb bytes.Buffer
	code := cmd.Main(append([]string{"check", "--output", "json"}, args...), &out, &errb)
	if code == 2 {
		t.Fatalf("usernsctl check %v: exit 2: %s", args, errb.String())
	}
	var rep struct{ Checks []outcome }
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("check %v: %v\n%s", args, err, out.String())
	}
	m := map[string]outcome{}
	for _, o := range rep.Checks {
		m[o.ID] = o
	}
	return m
}

// A snapshot of this very host, checked with --root, gives the same status
// for every check ID as the live run, for every target. As root the probes
// run for real and their recorded results must carry over too; without
// root both sides report them skipped, and the rest still compares.
func TestSnapshotMatchesLiveRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	var out, errb bytes.Buffer
	if code := cmd.Main([]string{"snapshot", dir}, &out, &errb); code != 0 {
		t.Fatalf("snapshot: exit %d: %s", code, errb.String())
	}
	for _, target := range []string{"docker", "containerd", "kubernetes", "rootless"} {
		live := checkJSON(t, "--target", target)
		snap := checkJSON(t, "--target", target, "--root", dir)
		if len(live) == 0 || len(live) != len(snap) {
			t.Fatalf("%s: live run has %d checks, snapshot run %d", target, len(live), len(snap))
		}
		for id, l := range live {
			s, ok := snap[id]
			if !ok {
				t.Errorf("%s: %s missing from the snapshot run", target, id)
				continue
			}
			if l.Status != s.Status {
				t.Errorf("%s: %s is %s live but %s from the snapshot\n live: %s\n snap: %s", target, id, l.Status, s.Status, l.Message, s.Message)
			}
		}
	}
	// What the checks used, not whole daemon binaries: a host's snapshot
	// stays small.
	var size int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return nil
	})
	if size > 5<<20 {
		t.Errorf("the snapshot holds %d bytes, want under 5 MiB", size)
	}
}

// A binary whose build info a check read is kept as a stand-in: its mode,
// not its bytes (the snapshot's commands.json answers for it).
func TestSnapshotBinaryStandIn(t *testing.T) {
	src := t.TempDir()
	bin := filepath.Join(src, "usr/bin/dockerd")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	if err := os.WriteFile(bin, bytes.Repeat([]byte{0x7f}, 8<<20), 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := host.At(src)
	if err != nil {
		t.Fatal(err)
	}
	h.Record()
	f, err := h.OpenMetadata("/usr/bin/dockerd")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	dir := filepath.Join(t.TempDir(), "snap")
	if _, err := snapshot.Write(dir, h, snapshot.Contents{Files: h.Recorded()}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "usr/bin/dockerd"))
	if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("stand-in: %v %v", fi, err)
	}
}

// Secrets never reach a snapshot, even on a host that has them.
func TestSnapshotHasNoSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	var out, errb bytes.Buffer
	if code := cmd.Main([]string{"snapshot", dir}, &out, &errb); code != 0 {
		t.Fatalf("snapshot: exit %d: %s", code, errb.String())
	}
	for _, p := range []string{"etc/shadow", "etc/gshadow", "etc/ssh"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("snapshot contains %s", p)
		}
	}
}

func TestSnapshotRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	var out, errb bytes.Buffer
	if code := cmd.Main([]string{"snapshot", dir}, &out, &errb); code != 2 {
		t.Fatalf("snapshot into a non-empty dir: exit %d, want 2", code)
	}
}

func TestSnapshotTar(t *testing.T) {
	file := filepath.Join(t.TempDir(), "host.tar.gz")
	var out, errb bytes.Buffer
	if code := cmd.Main([]string{"snapshot", "--tar", file}, &out, &errb); code != 0 {
		t.Fatalf("snapshot --tar: exit %d: %s", code, errb.String())
	}
	x := t.TempDir()
	if b, err := exec.Command("tar", "-xzf", file, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v: %s", err, b)
	}
	live := checkJSON(t, "--target", "docker")
	snap := checkJSON(t, "--target", "docker", "--root", x)
	for id, l := range live {
		if snap[id].Status != l.Status {
			t.Errorf("%s: %s live, %s from the extracted archive", id, l.Status, snap[id].Status)
		}
	}
}

// The host's modes and owners, which a checkout cannot keep, are recorded
// beside the tree and read back through stat.
func TestSnapshotRecordsModesAndOwners(t *testing.T) {
	src := t.TempDir()
	home := filepath.Join(src, "home/alice")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	if os.Getuid() == 0 {
		os.Chown(home, 1000, 1001)
	}
	h, err := host.At(src)
	if err != nil {
		t.Fatal(err)
	}
	h.Record()
	if _, err := h.Stat("/home/alice"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "snap")
	if _, err := snapshot.Write(dir, h, snapshot.Contents{Files: h.Recorded()}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "home/alice"), 0o755) // as a checkout would leave it
	snap, err := host.At(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := snap.Stat("/home/alice")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("mode %v, want drwx------", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); os.Getuid() == 0 && (st.Uid != 1000 || st.Gid != 1001) {
		t.Errorf("owner %d:%d, want 1000:1001", st.Uid, st.Gid)
	}
}
