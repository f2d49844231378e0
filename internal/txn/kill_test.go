package txn

import (
	"bufio"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killEverywhere runs op in a child once per crash point, killing it
// there with SIGKILL, until a run reaches the end unkilled. prepare builds
// the tree for each run; check judges the tree after the kill.
func killEverywhere(t *testing.T, op string, prepare func(t *testing.T) string, check func(t *testing.T, dir string, points []string)) {
	for n := 1; ; n++ {
		dir := prepare(t)
		pointsFile := filepath.Join(t.TempDir(), "points")
		res := runChild(t, op, dir, "TXN_KILL_AT="+strconv.Itoa(n), "TXN_POINTS="+pointsFile)
		points := readPoints(pointsFile)
		t.Run(strconv.Itoa(n)+"-"+last(points), func(t *testing.T) {
			check(t, dir, points)
		})
		if !res.killed {
			if n < 10 {
				t.Fatalf("%s finished after only %d points: hook not wired?", op, n-1)
			}
			t.Logf("%s: killed at each of %d crash points", op, n-1)
			return
		}
		if t.Failed() {
			return
		}
	}
}

func readPoints(file string) []string {
	b, _ := os.ReadFile(file)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if _, name, ok := strings.Cut(l, " "); ok {
			out = append(out, name)
		}
	}
	return out
}

func last(points []string) string {
	if len(points) == 0 {
		return "start"
	}
	return points[len(points)-1]
}

// afterCrash is what must hold after any kill: every file old or new
// right away; after the next Begin all old or all new (all new only if the
// journal entry was committed); then revert, a second revert, a fresh
// apply and its revert all work.
func afterCrash(t *testing.T, dir string) string {
	t.Helper()
	states(t, dir)
	h := hostAt(t, dir)
	tx, err := Begin(ctx, h, testOpt)
	if err != nil {
		t.Fatalf("Begin after the crash: %v", err)
	}
	tx.Close()
	outcome := consistent(t, dir)
	if _, err := Revert(ctx, h, testOpt); err != nil {
		t.Fatalf("revert after the crash: %v", err)
	}
	allAre(t, dir, "old")
	if res, err := Revert(ctx, h, testOpt); err != nil || res.Changed {
		t.Fatalf("second revert: %+v %v", res, err)
	}
	if _, err := Commit(ctx, h, testOpt, scenarioPlan()); err != nil {
		t.Fatalf("apply after the crash: %v", err)
	}
	allAre(t, dir, "new")
	if _, err := Revert(ctx, h, testOpt); err != nil {
		t.Fatal(err)
	}
	allAre(t, dir, "old")
	if l := leftovers(t, dir); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
	return outcome
}

func reached(points []string, name string) bool {
	for _, p := range points {
		if p == name {
			return true
		}
	}
	return false
}

func TestKillApplyAtEveryPoint(t *testing.T) {
	killEverywhere(t, "apply", newTree, func(t *testing.T, dir string, points []string) {
		outcome := afterCrash(t, dir)
		if outcome == "new" && !reached(points, "manifest.committed") {
			t.Fatal("files are new although the apply never committed")
		}
		if outcome == "old" && reached(points, "committed") {
			t.Fatal("a committed apply was rolled back")
		}
	})
}

func TestKillRevertAtEveryPoint(t *testing.T) {
	applied := func(t *testing.T) string {
		dir := newTree(t)
		if _, err := Commit(ctx, hostAt(t, dir), testOpt, scenarioPlan()); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	killEverywhere(t, "revert", applied, func(t *testing.T, dir string, points []string) {
		states(t, dir)
		h := hostAt(t, dir)
		tx, err := Begin(ctx, h, testOpt)
		if err != nil {
			t.Fatalf("Begin after the crash: %v", err)
		}
		tx.Close()
		outcome := consistent(t, dir)
		if outcome == "old" && !reached(points, "manifest.committed") {
			t.Fatal("files are old although the revert never committed")
		}
		// Whatever happened, one more revert ends at the old state and
		// the one after it has nothing to do.
		if _, err := Revert(ctx, h, testOpt); err != nil {
			t.Fatal(err)
		}
		allAre(t, dir, "old")
		if res, err := Revert(ctx, h, testOpt); err != nil || res.Changed {
			t.Fatalf("second revert: %+v %v", res, err)
		}
		if l := leftovers(t, dir); len(l) > 0 {
			t.Fatalf("left behind: %v", l)
		}
	})
}

// TestKillRecoveryAtEveryPoint: a crash during the rollback of a crashed
// apply is recovered too.
func TestKillRecoveryAtEveryPoint(t *testing.T) {
	// Find the crash point in the middle of the writes: the third file
	// renamed into place.
	dir := newTree(t)
	pf := filepath.Join(t.TempDir(), "points")
	runChild(t, "apply", dir, "TXN_POINTS="+pf)
	mid := 0
	renamed := 0
	for i, p := range readPoints(pf) {
		if p == "renamed" {
			if renamed++; renamed == 4 { // the pending manifest, then three targets
				mid = i + 1
				break
			}
		}
	}
	if mid == 0 {
		t.Fatal("no mid-write point found")
	}
	crashed := func(t *testing.T) string {
		dir := newTree(t)
		if res := runChild(t, "apply", dir, "TXN_KILL_AT="+strconv.Itoa(mid)); !res.killed {
			t.Fatal("apply was not killed")
		}
		st := states(t, dir)
		if st[0] != "new" || st[len(st)-1] != "old" {
			t.Fatalf("not a half-applied tree: %v", st)
		}
		return dir
	}
	killEverywhere(t, "recover", crashed, func(t *testing.T, dir string, points []string) {
		if afterCrash(t, dir) != "old" {
			t.Fatal("an uncommitted apply survived recovery")
		}
	})
}

// TestKillAtRandomMoments kills apply after random delays, on top of the
// deterministic points: nothing about the kill is arranged by the code
// under test.
func TestKillAtRandomMoments(t *testing.T) {
	runs := 60
	if testing.Short() {
		runs = 15
	}
	// How long does a commit take once the child is ready?
	start := func(dir string) (*exec.Cmd, func(), *bufio.Reader) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TXN_CHILD=apply", "TXN_ROOT="+dir, "TXN_WAIT=1")
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		if l, _ := br.ReadString('\n'); l != "ready\n" {
			t.Fatalf("child: %q", l)
		}
		return cmd, func() { in.Write([]byte("go\n")) }, br
	}
	dir := newTree(t)
	cmd, goNow, out := start(dir)
	t0 := time.Now()
	goNow()
	if l, _ := out.ReadString('\n'); l != "done\n" {
		t.Fatalf("child: %q", l)
	}
	span := time.Since(t0)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	outcomes := map[string]int{}
	for i := range runs {
		dir := newTree(t)
		cmd, goNow, _ := start(dir)
		delay := time.Duration(r.Int64N(int64(span) + 1))
		goNow()
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		ok := t.Run(strconv.Itoa(i), func(t *testing.T) { outcomes[afterCrash(t, dir)]++ })
		if !ok {
			t.Fatalf("after a kill %s into a %s commit", delay, span)
		}
	}
	t.Logf("%d random kills within %s: outcomes %v", runs, span, outcomes)
}
