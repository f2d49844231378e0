package apply_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usernsctl/usernsctl/cmd"
)

const fresh = "debian-12-docker-fresh"

// The whole life of a Docker apply on a copy of a fresh Debian 12 host:
// apply allocates and writes, the check turns green, a second apply
// touches no byte, revert puts back the exact bytes, a second revert does
// nothing.
func TestDockerApplyIdempotentAndRevertible(t *testing.T) {
	dir := tree(t, fresh)
	before := state(t, dir)

	r, code := run(t, "apply", "--target", "docker", "--root", dir)
	if code != 0 || !r.Changed || r.Failed || !r.RestartRequired {
		t.Fatalf("apply: exit %d %+v", code, r)
	}
	for _, p := range []string{"etc/subuid", "etc/subgid"} {
		if got := read(t, dir, p); got != "dockremap:100000:65536\n" {
			t.Errorf("%s = %q", p, got)
		}
	}
	if !strings.Contains(read(t, dir, "etc/passwd"), "\ndockremap:") || !strings.Contains(read(t, dir, "etc/group"), "\ndockremap:") {
		t.Error("dockremap account not created")
	}
	if got := read(t, dir, "etc/docker/daemon.json"); !strings.Contains(got, `"userns-remap": "default"`) {
		t.Errorf("daemon.json = %q", got)
	}
	for _, c := range r.Changes {
		if c.Action == "update" && c.Backup == "" {
			t.Errorf("%s updated without a backup", c.Path)
		}
		if c.Diff == "" {
			t.Errorf("%s: no diff", c.Path)
		}
	}
	if _, code := run(t, "check", "--target", "docker", "--root", dir); code != 0 {
		t.Errorf("check after apply: exit %d", code)
	}

	applied := state(t, dir)
	r2, code := run(t, "apply", "--target", "docker", "--root", dir)
	if code != 0 || r2.Changed || len(r2.Changes) != 0 {
		t.Fatalf("second apply: exit %d %+v", code, r2)
	}
	if d := diffStates(applied, state(t, dir)); len(d) > 0 {
		t.Errorf("second apply touched %v", d)
	}

	rv, code := run(t, "revert", "--root", dir)
	if code != 0 || !rv.Changed {
		t.Fatalf("revert: exit %d %+v", code, rv)
	}
	if d := diffStates(contentState(t, dir), contentOf(before)); len(d) > 0 {
		t.Errorf("revert left differences: %v", d)
	}
	rv2, code := run(t, "revert", "--root", dir)
	if code != 0 || rv2.Changed {
		t.Errorf("second revert: exit %d %+v", code, rv2)
	}
}

func contentOf(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(v, "-> ") {
			out[k] = v
			continue
		}
		f := strings.SplitN(v, " ", 3)
		out[k] = f[0] + " " + f[1]
	}
	return out
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := tree(t, fresh)
	before := state(t, dir)
	r, code := run(t, "apply", "--target", "docker", "--root", dir, "--dry-run")
	if code != 0 || !r.Changed || len(r.Changes) == 0 {
		t.Fatalf("dry run: exit %d %+v", code, r)
	}
	for _, c := range r.Changes {
		if !strings.HasPrefix(c.Diff, "--- ") || c.Backup != "" {
			t.Errorf("%s: diff %q backup %q", c.Path, c.Diff, c.Backup)
		}
	}
	if d := diffStates(before, state(t, dir)); len(d) > 0 {
		t.Errorf("dry run changed %v", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "var/lib/usernsctl")); err == nil {
		t.Error("dry run created the state directory")
	}
}

// Bad input: exit 2, the file, line and column named, nothing written.
func TestBadInputExits2AndWritesNothing(t *testing.T) {
	for _, c := range []struct {
		name, path, content string
		want                []string
	}{
		{"daemon.json trailing comma", "etc/docker/daemon.json", "{\n  \"log-driver\": \"journald\",\n}\n", []string{"/etc/docker/daemon.json:3:1"}},
		{"malformed subuid line", "etc/subuid", "alice:100000\n", []string{"/etc/subuid:1"}},
		{"binary subgid", "etc/subgid", "\x00\x01\x02garbage\n", []string{"/etc/subgid:1"}},
		{"userns-remap root", "etc/docker/daemon.json", "{\"userns-remap\": \"root\"}\n", []string{"root"}},
		{"login.defs limit that does not parse", "etc/login.defs", "SUB_UID_MIN 100000\nSUB_UID_MAX 6OO100000\n", []string{"/etc/login.defs:2", "nothing was written"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := tree(t, fresh)
			write(t, dir, c.path, c.content)
			before := state(t, dir)
			r, code := run(t, "apply", "--target", "docker", "--root", dir, "--force", "all")
			if code != 2 || !r.Failed {
				t.Fatalf("exit %d, want 2: %+v", code, r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Msg, w) {
					t.Errorf("message %q does not name %q", r.Msg, w)
				}
			}
			if d := diffStates(before, state(t, dir)); len(d) > 0 {
				t.Errorf("bad input still wrote %v", d)
			}
		})
	}
}

// A failing check that apply does not fix blocks it (exit 1, nothing
// written); --force with its ID lets it through.
func TestBlockingCheckRefusesUnlessForced(t *testing.T) {
	dir := tree(t, fresh)
	// No runc and no crun: runtime.runc fails, and apply cannot fix that.
	var cmds map[string]any
	if err := json.Unmarshal([]byte(read(t, dir, ".usernsctl/commands.json")), &cmds); err != nil {
		t.Fatal(err)
	}
	for k := range cmds {
		if strings.HasPrefix(k, "runc ") || strings.HasPrefix(k, "crun ") {
			delete(cmds, k)
		}
	}
	b, _ := json.Marshal(cmds)
	write(t, dir, ".usernsctl/commands.json", string(b))
	before := state(t, dir)
	r, code := run(t, "apply", "--target", "docker", "--root", dir)
	if code != 1 || !r.Failed || len(r.Blocking) == 0 || r.Blocking[0].ID != "runtime.runc" {
		t.Fatalf("exit %d %+v", code, r)
	}
	if d := diffStates(before, state(t, dir)); len(d) > 0 {
		t.Errorf("refused apply wrote %v", d)
	}
	if r, code := run(t, "apply", "--target", "docker", "--root", dir, "--force", "runtime.runc"); code != 0 || !r.Changed {
		t.Fatalf("forced: exit %d %+v", code, r)
	}
	var out, errb bytes.Buffer
	if code := cmd.Main([]string{"apply", "--target", "docker", "--root", dir, "--force", "no.such.check"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "no.such.check") {
		t.Errorf("--force with an unknown ID: exit %d, want 2 naming it: %s", code, errb.String())
	}
}

// Every other line is kept byte for byte; the new range avoids every
// owner's ranges in both files and every account id; a last line without
// a newline gets one.
func TestAllocationAvoidsEverythingAndKeepsBytes(t *testing.T) {
	dir := tree(t, fresh)
	subuid := "# keep me\nalice:100000:65536\n\n1000:300000:5"
	write(t, dir, "etc/subuid", subuid)
	write(t, dir, "etc/subgid", "bob:165536:65536\n")
	// An account whose uid sits right after both ranges.
	pw := read(t, dir, "etc/passwd") + "svc:x:231072:231072::/nonexistent:/usr/sbin/nologin\n"
	write(t, dir, "etc/passwd", pw)
	r, code := run(t, "apply", "--target", "docker", "--root", dir, "--force", "subid.files")
	if code != 0 {
		t.Fatalf("exit %d %+v", code, r)
	}
	want := subuid + "\ndockremap:231073:65536\n"
	if got := read(t, dir, "etc/subuid"); got != want {
		t.Errorf("subuid:\n%q\nwant\n%q", got, want)
	}
	if got := read(t, dir, "etc/subgid"); got != "bob:165536:65536\ndockremap:231073:65536\n" {
		t.Errorf("subgid %q", got)
	}
	if got := read(t, dir, "etc/passwd"); !strings.HasPrefix(got, pw) {
		t.Error("passwd: existing lines changed")
	}
}

// An existing valid range is kept; an invalid one is reported, not
// silently replaced.
func TestExistingRangesKeptOrRefused(t *testing.T) {
	dir := tree(t, fresh)
	write(t, dir, "etc/subuid", "dockremap:500000:65536\n")
	write(t, dir, "etc/subgid", "dockremap:500000:65536\n")
	if r, code := run(t, "apply", "--target", "docker", "--root", dir); code != 0 || read(t, dir, "etc/subuid") != "dockremap:500000:65536\n" {
		t.Fatalf("valid range: exit %d %+v, subuid %q", code, r, read(t, dir, "etc/subuid"))
	}

	dir = tree(t, fresh)
	write(t, dir, "etc/subuid", "alice:100000:65536\ndockremap:100000:65536\n")
	write(t, dir, "etc/subgid", "alice:100000:65536\ndockremap:100000:65536\n")
	before := state(t, dir)
	r, code := run(t, "apply", "--target", "docker", "--root", dir, "--force", "subid.overlap")
	if code != 1 || !r.Failed || !strings.Contains(r.Msg, "/etc/subuid:2") || !strings.Contains(r.Msg, "overlaps alice:100000:65536") || r.Fix == "" {
		t.Fatalf("overlapping range: exit %d %+v", code, r)
	}
	if d := diffStates(before, state(t, dir)); len(d) > 0 {
		t.Errorf("refused apply wrote %v", d)
	}
}

// An explicit --user NAME:GROUP creates both and writes the spec.
func TestDockerNamedUser(t *testing.T) {
	dir := tree(t, fresh)
	r, code := run(t, "apply", "--target", "docker", "--root", dir, "--user", "remapper:remappers", "--count", "131072")
	if code != 0 {
		t.Fatalf("exit %d %+v", code, r)
	}
	if !strings.Contains(read(t, dir, "etc/docker/daemon.json"), `"remapper:remappers"`) ||
		!strings.Contains(read(t, dir, "etc/group"), "\nremappers:") ||
		read(t, dir, "etc/subuid") != "remapper:100000:131072\n" {
		t.Errorf("daemon.json %q group? subuid %q", read(t, dir, "etc/docker/daemon.json"), read(t, dir, "etc/subuid"))
	}
}

// 20 applies for 20 different users at once end with 20 non-overlapping
// ranges: the transaction's locks serialise them.
func TestConcurrentAppliesDoNotOverlap(t *testing.T) {
	dir := tree(t, fresh)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cli("apply", "--target", "docker", "--root", dir, "--user", fmt.Sprintf("user%02d", i), "--output", "json").CombinedOutput()
			if err != nil {
				errs <- fmt.Sprintf("user%02d: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, f := range []string{"etc/subuid", "etc/subgid"} {
		type rng struct{ start, end uint64 }
		var rs []rng
		owners := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(read(t, dir, f)), "\n") {
			p := strings.Split(l, ":")
			s, _ := strconv.ParseUint(p[1], 10, 64)
			c, _ := strconv.ParseUint(p[2], 10, 64)
			rs = append(rs, rng{s, s + c})
			owners[p[0]] = true
		}
		if len(rs) != n || len(owners) != n {
			t.Fatalf("%s: %d lines for %d owners, want %d", f, len(rs), len(owners), n)
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
		for i := 1; i < len(rs); i++ {
			if rs[i].start < rs[i-1].end {
				t.Errorf("%s: ranges overlap: %v %v", f, rs[i-1], rs[i])
			}
		}
	}
	uids := map[string]bool{}
	for _, l := range strings.Split(read(t, dir, "etc/passwd"), "\n") {
		if strings.HasPrefix(l, "user") {
			uid := strings.Split(l, ":")[2]
			if uids[uid] {
				t.Errorf("uid %s given twice", uid)
			}
			uids[uid] = true
		}
	}
	if len(uids) != n {
		t.Errorf("%d users created, want %d", len(uids), n)
	}
}

// Killing apply at any moment leaves every file either as it was or as
// a complete apply writes it, and the next apply finishes the job.
func TestKillApplyAnyMoment(t *testing.T) {
	ref := tree(t, fresh)
	old := contentOf(state(t, ref))
	if _, code := run(t, "apply", "--target", "docker", "--root", ref); code != 0 {
		t.Fatal("reference apply failed")
	}
	done := contentOf(state(t, ref))
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for i := 0; i < rounds; i++ {
		dir := tree(t, fresh)
		c := cli("apply", "--target", "docker", "--root", dir, "--output", "json")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%20) * 3 * time.Millisecond)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		for p, v := range contentOf(state(t, dir)) {
			if v != old[p] && v != done[p] {
				t.Fatalf("round %d: %s is neither old nor new after a kill", i, p)
			}
		}
		if r, code := run(t, "apply", "--target", "docker", "--root", dir); code != 0 {
			t.Fatalf("round %d: apply after the kill: exit %d %+v", i, code, r)
		}
		var left []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if rel, _ := filepath.Rel(dir, p); err == nil && lockTemp.MatchString(rel) {
				left = append(left, rel)
			}
			return nil
		})
		if len(left) > 0 {
			t.Fatalf("round %d: temporary files left after the next apply: %v", i, left)
		}
		if d := diffStates(contentOf(state(t, dir)), done); len(d) > 0 {
			// The new account's shadow date may differ across midnight only.
			t.Fatalf("round %d: after the kill and a new apply, differs from a clean apply: %v", i, d)
		}
	}
}
