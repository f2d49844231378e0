package txn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var ctx = context.Background()

func TestCommitAndRevertScenario(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	res, err := Commit(ctx, h, testOpt, scenarioPlan())
	if err != nil {
		t.Fatal(err)
	}
	allAre(t, dir, "new")
	if !res.Changed || len(res.Changes) != len(scenario) || res.ID == "" {
		t.Fatalf("result %+v", res)
	}
	want := map[string]string{"/etc/subuid": "update", "/etc/docker/daemon.json": "create", "/etc/sysctl.d/99-hardening.conf": "delete"}
	for _, c := range res.Changes {
		if a, ok := want[c.Path]; ok && a != c.Action {
			t.Errorf("%s: action %s, want %s", c.Path, c.Action, a)
		}
		if c.Action == "create" && c.Backup != "" || c.Action != "create" && c.Backup == "" {
			t.Errorf("%s: backup %q for %s", c.Path, c.Backup, c.Action)
		}
	}
	if d := res.Changes[0].Diff; !strings.Contains(d, "--- /etc/subuid\n+++ /etc/subuid\n") || !strings.Contains(d, "+dockremap:231072:65536\n") {
		t.Errorf("diff:\n%s", d)
	}
	if d := res.Changes[2].Diff; !strings.HasPrefix(d, "--- /dev/null\n+++ /etc/docker/daemon.json\n") {
		t.Errorf("create diff:\n%s", d)
	}
	// Created directories belong to root with 0755.
	if fi, err := os.Stat(filepath.Join(dir, "etc/containerd/conf.d")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("created dir: %v %v", fi, err)
	}

	rev, err := Revert(ctx, h, testOpt)
	if err != nil {
		t.Fatal(err)
	}
	allAre(t, dir, "old")
	if !rev.Changed {
		t.Fatalf("revert result %+v", rev)
	}
	for _, d := range []string{"etc/containerd/conf.d", "etc/containerd"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("%s created by apply is still there after revert", d)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/docker")); err != nil {
		t.Error("revert removed /etc/docker, which existed before")
	}

	again, err := Revert(ctx, h, testOpt)
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed || !strings.Contains(again.Message, "nothing to revert") {
		t.Fatalf("second revert: %+v", again)
	}
	allAre(t, dir, "old")
	if l := leftovers(t, dir); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
}

func TestBackupsAndJournal(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	res, err := Commit(ctx, h, testOpt, scenarioPlan())
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, DefaultStateDir)
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir %v %v: backups may hold /etc/shadow, it must be 0700", fi, err)
	}
	for _, c := range res.Changes {
		if c.Backup == "" {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, c.Backup))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("backup %s: %v %v", c.Backup, fi, err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, c.Backup))
		for _, s := range scenario {
			if s.path == c.Path && string(got) != s.old.data {
				t.Errorf("backup of %s does not hold the exact previous bytes", c.Path)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(state, "backups", res.ID, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.State != stateCommitted || m.Kind != kindApply || len(m.Files) != len(scenario) {
		t.Fatalf("manifest %+v", m)
	}
	if r := m.Files[1]; !r.Existed || r.Meta == nil || r.Meta.Mode != 0o640 {
		t.Fatalf("subgid record %+v: mode 0640 must be recorded", r)
	}
	if r := m.Files[3]; r.Existed || len(r.Dirs) != 2 || r.Dirs[0] != "/etc/containerd" {
		t.Fatalf("created toml record %+v", r)
	}
}

func TestSecondApplyTouchesNothing(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	if _, err := Commit(ctx, h, testOpt, scenarioPlan()); err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	unix.Stat(filepath.Join(dir, "etc/subuid"), &before)
	// The same intent, planned from the applied state.
	var p Plan
	for _, s := range scenario {
		c := Change{Path: s.path}
		if s.new.exists {
			c.Old, c.New = []byte(s.new.data), []byte(s.new.data)
		}
		p = append(p, c)
	}
	if p.Changed() || p.Diff() != "" {
		t.Fatal("plan of an applied host reports a change")
	}
	res, err := Commit(ctx, h, testOpt, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.ID != "" {
		t.Fatalf("%+v", res)
	}
	var after unix.Stat_t
	unix.Stat(filepath.Join(dir, "etc/subuid"), &after)
	if before.Ino != after.Ino || before.Mtim != after.Mtim {
		t.Fatal("a no-op apply replaced /etc/subuid")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, DefaultStateDir, "backups"))
	if len(ents) != 1 {
		t.Fatalf("a no-op apply added a journal entry: %v", ents)
	}
}

func TestKeepsOwnerGroupMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	dir := newTree(t)
	p := filepath.Join(dir, "etc/subuid")
	if err := os.Chown(p, 1234, 42); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, 0o4640); err != nil {
		t.Fatal(err)
	}
	res, err := Commit(ctx, hostAt(t, dir), testOpt, Plan{{Path: "/etc/subuid", Old: []byte(subOld), New: []byte("x:1:2\n")}})
	if err != nil || !res.Changed {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Stat(p, &st)
	if st.Uid != 1234 || st.Gid != 42 || st.Mode&0o7777 != 0o4640 {
		t.Fatalf("owner %d:%d mode %#o, want 1234:42 04640", st.Uid, st.Gid, st.Mode&0o7777)
	}
	// A created file: the given mode, root:root.
	if _, err := Commit(ctx, hostAt(t, dir), testOpt, Plan{{Path: "/etc/new.conf", New: []byte("a\n"), Mode: 0o600}}); err != nil {
		t.Fatal(err)
	}
	unix.Stat(filepath.Join(dir, "etc/new.conf"), &st)
	if st.Uid != 0 || st.Gid != 0 || st.Mode&0o7777 != 0o600 {
		t.Fatalf("new file %d:%d %#o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	// Revert puts the original owner and mode back too.
	if _, err := Revert(ctx, hostAt(t, dir), testOpt); err != nil {
		t.Fatal(err)
	}
	unix.Stat(p, &st)
	if st.Uid != 1234 || st.Gid != 42 || st.Mode&0o7777 != 0o4640 {
		t.Fatalf("after revert owner %d:%d mode %#o", st.Uid, st.Gid, st.Mode&0o7777)
	}
}

func TestKeepsXattrs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting an ACL on another's behalf needs root")
	}
	dir := newTree(t)
	p := filepath.Join(dir, "etc/subuid")
	// A POSIX ACL granting uid 1234 read: version 2, user_obj rw, user 1234 r, group_obj r, mask r, other r.
	acl := []byte{2, 0, 0, 0,
		1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		2, 0, 4, 0, 0xd2, 0x04, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	if err := unix.Setxattr(p, "system.posix_acl_access", acl, 0); err != nil {
		t.Skipf("filesystem without POSIX ACLs: %v", err)
	}
	if _, err := Commit(ctx, hostAt(t, dir), testOpt, Plan{{Path: "/etc/subuid", Old: []byte(subOld), New: []byte("x:1:2\n")}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := unix.Getxattr(p, "system.posix_acl_access", buf)
	if err != nil || string(buf[:n]) != string(acl) {
		t.Fatalf("ACL not kept: %v %x", err, buf[:max(n, 0)])
	}
}

func TestEmptyContentIsWritten(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	res, err := Commit(ctx, h, testOpt, Plan{
		{Path: "/etc/subuid", Old: []byte(subOld), New: []byte{}},
		{Path: "/etc/created-empty", New: []byte{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, dir, "/etc/subuid"); !got.exists || got.data != "" {
		t.Fatalf("subuid %+v, want an empty file", got)
	}
	if got := stateOf(t, dir, "/etc/created-empty"); !got.exists || got.data != "" || got.mode != 0o644 {
		t.Fatalf("created-empty %+v", got)
	}
	if d := res.Changes[1].Diff; d != "--- /dev/null\n+++ /etc/created-empty\n" {
		t.Fatalf("diff of an empty created file %q", d)
	}
	if _, err := Revert(ctx, h, testOpt); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, dir, "/etc/subuid"); got.data != subOld {
		t.Fatal("revert of an emptied file")
	}
	if got := stateOf(t, dir, "/etc/created-empty"); got.exists {
		t.Fatal("created empty file survived revert")
	}
}

func TestRefusesSymlinkDirAndDevice(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	os.WriteFile(filepath.Join(dir, "etc/real.json"), []byte("{}\n"), 0o644)
	os.Symlink("real.json", filepath.Join(dir, "etc/docker/daemon.json"))
	os.Mkdir(filepath.Join(dir, "etc/adir"), 0o755)
	unix.Mkfifo(filepath.Join(dir, "etc/fifo"), 0o644)

	cases := []struct {
		c    Change
		want error
	}{
		{Change{Path: "/etc/docker/daemon.json", New: []byte("{}\n")}, ErrSymlink},                   // planned as absent
		{Change{Path: "/etc/docker/daemon.json", Old: []byte("{}\n"), New: []byte("x")}, ErrSymlink}, // planned from the link's target
		{Change{Path: "/etc/adir", New: []byte("x")}, ErrNotRegular},
		{Change{Path: "/etc/fifo", Old: []byte{}, New: []byte("x")}, ErrNotRegular},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {

			_, err := Commit(ctx, h, testOpt, Plan{c.c})
			if !errors.Is(err, c.want) {
				t.Errorf("%s: got %v, want %v", c.c.Path, err, c.want)
			}
		})
	}
	if target, _ := os.Readlink(filepath.Join(dir, "etc/docker/daemon.json")); target != "real.json" {
		t.Fatal("the symlink was replaced")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/real.json")); string(b) != "{}\n" {
		t.Fatal("the link's target was written")
	}
	_, err := Commit(ctx, h, testOpt, Plan{{Path: "/etc/docker/daemon.json", New: []byte("{}\n")}})
	if err == nil || !strings.Contains(err.Error(), "to real.json") {
		t.Fatalf("message should name the link target: %v", err)
	}
}

func TestCompareAndSwap(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	tx, err := Begin(ctx, h, testOpt, "/etc/subuid", "/etc/docker/daemon.json")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	old, err := tx.Read("/etc/subuid")
	if err != nil || string(old) != subOld {
		t.Fatalf("read %q %v", old, err)
	}
	if b, err := tx.Read("/etc/docker/daemon.json"); b != nil || err != nil {
		t.Fatalf("absent file read as %q %v", b, err)
	}
	// Someone (a tool that ignores the locks) writes meanwhile.
	writeFile(t, dir, "/etc/subuid", subOld+"bob:300000:65536\n", 0o644)
	_, err = tx.Commit(Plan{
		{Path: "/etc/docker/daemon.json", New: []byte("{}\n")},
		{Path: "/etc/subuid", Old: old, New: append(old, "x:1:1\n"...)},
	})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "/etc/subuid") {
		t.Fatalf("got %v, want a conflict on /etc/subuid", err)
	}
	if stateOf(t, dir, "/etc/docker/daemon.json").exists {
		t.Fatal("a file was written although another one conflicted")
	}
	if stateOf(t, dir, "/etc/subuid").data != subOld+"bob:300000:65536\n" {
		t.Fatal("the concurrent change was overwritten")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, DefaultStateDir, "backups")); len(ents) != 0 {
		t.Fatalf("a refused commit left a journal entry: %v", ents)
	}
}

func TestEmptyIsNotAbsent(t *testing.T) {
	dir := newTree(t)
	writeFile(t, dir, "/etc/empty", "", 0o644)
	h := hostAt(t, dir)
	tx, err := Begin(ctx, h, testOpt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tx.Read("/etc/empty")
	tx.Close()
	if err != nil || b == nil {
		t.Fatalf("an empty file must read as []byte{}, not nil: %v %v", b, err)
	}
	// Planned as absent, but it exists: conflict.
	_, err = Commit(ctx, h, testOpt, Plan{{Path: "/etc/empty", New: []byte("x\n")}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("got %v", err)
	}
}

func TestAccountFilesMustBeLocked(t *testing.T) {
	dir := newTree(t)
	tx, err := Begin(ctx, hostAt(t, dir), testOpt) // no paths
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	_, err = tx.Commit(Plan{{Path: "/etc/subuid", Old: []byte(subOld), New: []byte("x:1:1\n")}})
	if err == nil || !strings.Contains(err.Error(), "lock is not held") {
		t.Fatalf("got %v", err)
	}
}

func TestLocksHeldDuringTx(t *testing.T) {
	dir := newTree(t)
	tx, err := Begin(ctx, hostAt(t, dir), testOpt, "/etc/subuid", "/etc/docker/daemon.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "etc/subuid.lock"))
	if err != nil || !strings.HasPrefix(string(b), strconv.Itoa(os.Getpid())) {
		t.Fatalf("shadow lock not held: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/docker/daemon.json.lock")); !os.IsNotExist(err) {
		t.Fatal("a non-account file got a shadow lock")
	}
	tx.Close()
	if _, err := os.Stat(filepath.Join(dir, "etc/subuid.lock")); !os.IsNotExist(err) {
		t.Fatal("lock not released")
	}
}

// TestStackedAppliesRevertToBeforeUsernsctl: three applies, each planned
// from the state the previous left, then one revert: every file is as it
// was before the first apply, and files only a later apply created are
// gone.
func TestStackedAppliesRevertToBeforeUsernsctl(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	daemon := "/etc/docker/daemon.json"
	step := func(p Plan) {
		t.Helper()
		if _, err := Commit(ctx, h, testOpt, p); err != nil {
			t.Fatal(err)
		}
	}
	s1 := subOld + "dockremap:231072:65536\n"
	s2 := s1 + "kubelet:4294836224:65536\n"
	step(Plan{{Path: "/etc/subuid", Old: []byte(subOld), New: []byte(s1)}, {Path: daemon, New: []byte("{\"userns-remap\":\"default\"}\n")}})
	step(Plan{{Path: "/etc/subuid", Old: []byte(s1), New: []byte(s2)}, {Path: daemon, Old: []byte("{\"userns-remap\":\"default\"}\n"), New: []byte("{\"userns-remap\":\"alice\"}\n")}})
	step(Plan{{Path: "/etc/containerd/conf.d/usernsctl.toml", New: []byte("version = 2\n")}})

	res, err := Revert(ctx, h, testOpt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "reverted 3") {
		t.Fatalf("message %q", res.Message)
	}
	allAre(t, dir, "old")
	if _, err := os.Stat(filepath.Join(dir, "etc/containerd")); !os.IsNotExist(err) {
		t.Fatal("directory created by the third apply survived")
	}
	if res, _ := Revert(ctx, h, testOpt); res.Changed {
		t.Fatal("second revert changed something")
	}
	// The journal keeps the undone applies and the revert for the record.
	ents, _ := os.ReadDir(filepath.Join(dir, DefaultStateDir, "reverted"))
	if len(ents) != 4 {
		t.Fatalf("reverted/ holds %d entries, want 3 applies and 1 revert", len(ents))
	}
}

// TestRevertRefusesToDiscardOthersChanges: a useradd between two applies
// adds its own subuid line; reverting would drop it, so revert refuses
// and changes nothing, until forced.
func TestRevertRefusesToDiscardOthersChanges(t *testing.T) {
	for _, when := range []string{"between", "after"} {
		t.Run(when, func(t *testing.T) {
			dir := newTree(t)
			h := hostAt(t, dir)
			s1 := subOld + "dockremap:231072:65536\n"
			if _, err := Commit(ctx, h, testOpt, Plan{
				{Path: "/etc/subuid", Old: []byte(subOld), New: []byte(s1)},
				{Path: "/etc/docker/daemon.json", New: []byte("{}\n")},
			}); err != nil {
				t.Fatal(err)
			}
			final := s1 + "bob:296608:65536\n"
			writeFile(t, dir, "/etc/subuid", final, 0o644) // useradd bob
			if when == "between" {
				final += "kubelet:4294836224:65536\n"
				if _, err := Commit(ctx, h, testOpt, Plan{{Path: "/etc/subuid", Old: []byte(s1 + "bob:296608:65536\n"), New: []byte(final)}}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Revert(ctx, h, testOpt)
			if err == nil || !strings.Contains(err.Error(), "/etc/subuid was changed") || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("got %v", err)
			}
			if stateOf(t, dir, "/etc/subuid").data != final || !stateOf(t, dir, "/etc/docker/daemon.json").exists {
				t.Fatal("a refused revert changed files")
			}
			force := testOpt
			force.Force = true
			res, err := Revert(ctx, h, force)
			if err != nil {
				t.Fatal(err)
			}
			allAre(t, dir, "old")
			// The discarded content is kept in the revert's backup.
			for _, c := range res.Changes {
				if c.Path == "/etc/subuid" {
					b, err := os.ReadFile(filepath.Join(dir, c.Backup))
					if err != nil || string(b) != final {
						t.Fatalf("forced revert did not keep the overwritten content: %v", err)
					}
				}
			}
		})
	}
}

func TestUndo(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	s1 := subOld + "dockremap:231072:65536\n"
	if _, err := Commit(ctx, h, testOpt, Plan{{Path: "/etc/subuid", Old: []byte(subOld), New: []byte(s1)}}); err != nil {
		t.Fatal(err)
	}
	tx, err := Begin(ctx, h, testOpt, "/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(Plan{
		{Path: "/etc/subuid", Old: []byte(s1), New: []byte(s1 + "k:1:1\n")},
		{Path: "/etc/docker/daemon.json", New: []byte("{}\n")},
	}); err != nil {
		t.Fatal(err)
	}
	// The daemon did not come back: undo only this apply.
	res, err := tx.Undo()
	if err != nil || !res.Changed {
		t.Fatalf("%+v %v", res, err)
	}
	tx.Close()
	if stateOf(t, dir, "/etc/subuid").data != s1 || stateOf(t, dir, "/etc/docker/daemon.json").exists {
		t.Fatal("undo did not restore the state before this apply")
	}
	// The earlier apply is still recorded and revertible.
	if _, err := Revert(ctx, h, testOpt); err != nil {
		t.Fatal(err)
	}
	if stateOf(t, dir, "/etc/subuid").data != subOld {
		t.Fatal("revert after undo")
	}
}

// TestFailedCommitRollsBack: a write that fails half-way through a plan
// leaves no file changed and no journal entry.
func TestFailedCommitRollsBack(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	// After the first file is replaced, a file appears where the second
	// one's directory must be created, so its write fails.
	hook = func(point string) {
		if point == "change.done" {
			os.WriteFile(filepath.Join(dir, "etc/containerd"), nil, 0o644)
		}
	}
	defer func() { hook = nil }()
	_, err := Commit(ctx, h, testOpt, Plan{
		{Path: "/etc/subuid", Old: []byte(subOld), New: []byte("x:1:1\n")},
		{Path: "/etc/containerd/conf.d/usernsctl.toml", New: []byte("version = 2\n")},
	})
	if !errors.Is(err, unix.ENOTDIR) || !strings.Contains(err.Error(), "every file was rolled back") {
		t.Fatalf("got %v", err)
	}
	if stateOf(t, dir, "/etc/subuid").data != subOld {
		t.Fatal("/etc/subuid not rolled back")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, DefaultStateDir, "backups")); len(ents) != 0 {
		t.Fatalf("journal entry left: %v", ents)
	}
}

// TestWritesStayInsideRoot: with --root DIR, a directory symlink in DIR
// pointing outside cannot carry a write out of DIR.
func TestWritesStayInsideRoot(t *testing.T) {
	dir := newTree(t)
	outside := t.TempDir()
	os.RemoveAll(filepath.Join(dir, "etc/docker"))
	os.Symlink(outside, filepath.Join(dir, "etc/docker"))                         // absolute
	os.Symlink("../../../../../../../.."+outside, filepath.Join(dir, "etc/crio")) // climbing
	h := hostAt(t, dir)
	for _, p := range []string{"/etc/docker/daemon.json", "/etc/crio/crio.conf"} {
		if _, err := Commit(ctx, h, testOpt, Plan{{Path: p, New: []byte("{}\n")}}); err == nil {
			t.Errorf("%s: written although its directory resolves to nothing inside DIR", p)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written outside the root: %v", ents)
	}
	// With the link's target present inside DIR, the write goes there.
	os.MkdirAll(filepath.Join(dir, outside), 0o755)
	if _, err := Commit(ctx, h, testOpt, Plan{{Path: "/etc/docker/daemon.json", New: []byte("{}\n")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, outside, "daemon.json")); err != nil {
		t.Fatal("write through an in-root link did not land inside DIR")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written outside the root: %v", ents)
	}
}

func TestPlanDiff(t *testing.T) {
	p := scenarioPlan()
	d := p.Diff()
	for _, want := range []string{
		"--- /etc/subuid\n+++ /etc/subuid\n@@ -1,2 +1,3 @@\n root:100000:65536\n alice:165536:65536\n+dockremap:231072:65536\n",
		"--- /dev/null\n+++ /etc/docker/daemon.json\n@@ -0,0 +1,3 @@\n",
		"--- /etc/sysctl.d/99-hardening.conf\n+++ /dev/null\n@@ -1 +0,0 @@\n-user.max_user_namespaces = 0\n",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks\n%s\nin\n%s", want, d)
		}
	}
	if !p.Changed() {
		t.Fatal("Changed")
	}
}

func TestInterruptedBackupIsDiscarded(t *testing.T) {
	dir := newTree(t)
	// What a process killed while saving backups leaves: an entry with
	// backups but no manifest.
	e := filepath.Join(dir, DefaultStateDir, "backups", "000001-20250101T000000Z")
	os.MkdirAll(e, 0o700)
	os.WriteFile(filepath.Join(e, "0-subuid"), []byte(subOld), 0o600)
	tx, err := Begin(ctx, hostAt(t, dir), testOpt)
	if err != nil {
		t.Fatal(err)
	}
	tx.Close()
	if _, err := os.Stat(e); !os.IsNotExist(err) {
		t.Fatal("incomplete entry not removed")
	}
	if res, _ := Revert(ctx, hostAt(t, dir), testOpt); res.Changed {
		t.Fatal("revert acted on an incomplete entry")
	}
}

func TestDamagedManifest(t *testing.T) {
	dir := newTree(t)
	e := filepath.Join(dir, DefaultStateDir, "backups", "000001-20250101T000000Z")
	os.MkdirAll(e, 0o700)
	for _, bad := range []string{
		"{\x00garbage",
		`{"schema":"usernsctl.journal/v1","kind":"apply","state":"committed","files":[{"path":"/etc/subuid","existed":true,"backup":"../../../../etc/shadow","meta":{}}]}`,
		`{"schema":"usernsctl.journal/v1","kind":"apply","state":"committed","files":[{"path":"etc/subuid"}]}`,
		`{"schema":"usernsctl.journal/v9"}`,
	} {
		os.WriteFile(filepath.Join(e, "manifest.json"), []byte(bad), 0o600)
		_, err := Begin(ctx, hostAt(t, dir), testOpt)
		if err == nil || !strings.Contains(err.Error(), "manifest.json") {
			t.Fatalf("%s: got %v", bad, err)
		}
	}
}

// TestCheckSeesEarlierChangesAndAborts: a change's Check runs after the
// plan's earlier changes are written (a validator can rely on them), and
// its error rolls every written file back.
func TestCheckSeesEarlierChangesAndAborts(t *testing.T) {
	dir := newTree(t)
	h := hostAt(t, dir)
	var sawNewSubuid bool
	_, err := Commit(ctx, h, testOpt, Plan{
		{Path: "/etc/subuid", Old: []byte(subOld), New: []byte("x:1:1\n")},
		{Path: "/etc/docker/daemon.json", New: []byte("{}\n"), Check: func(candidate []byte) error {
			b, _ := os.ReadFile(filepath.Join(dir, "etc/subuid"))
			sawNewSubuid = string(b) == "x:1:1\n"
			return errors.New("dockerd --validate: invalid config")
		}},
	})
	if err == nil || !strings.Contains(err.Error(), "dockerd --validate: invalid config") || !strings.Contains(err.Error(), "every file was rolled back") {
		t.Fatalf("got %v", err)
	}
	if !sawNewSubuid {
		t.Fatal("Check ran before the earlier change was written")
	}
	if stateOf(t, dir, "/etc/subuid").data != subOld {
		t.Fatal("/etc/subuid not rolled back")
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/docker/daemon.json")); !os.IsNotExist(err) {
		t.Fatalf("daemon.json written despite the failed check: %v", err)
	}
}

// No diff carries a password hash: shadow's field 2 is masked, its locked
// and empty markers kept.
func TestDiffHidesPasswordHashes(t *testing.T) {
	old := "root:$6$salt$hash:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n"
	c := Change{Path: "/etc/shadow", Old: []byte(old), New: []byte(old + "dockremap:!:20000::::::\n")}
	d := c.Diff()
	if strings.Contains(d, "$6$") || !strings.Contains(d, "root:<hash hidden>:19000") || !strings.Contains(d, "+dockremap:!:20000") || !strings.Contains(d, "bin:*:") {
		t.Errorf("%s", d)
	}
	if p := (Change{Path: "/etc/passwd", Old: []byte("a:x:1:1::/:/bin/sh\n"), New: []byte("b:x:2:2::/:/bin/sh\n")}).Diff(); !strings.Contains(p, "a:x:1") {
		t.Errorf("passwd is not masked: %s", p)
	}
}
