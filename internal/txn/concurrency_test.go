package txn

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentAppends: 20 processes each read /etc/subuid, add their own
// line and commit, all at once. The locks serialise the read-plan-write of
// each, so every line ends up present exactly once (without them, a
// commit planned from a stale read fails its compare-and-swap). The 20
// applies stack in the journal, and one revert undoes all of them.
func TestConcurrentAppends(t *testing.T) {
	const n = 20
	dir := newTree(t)
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "TXN_CHILD=append", "TXN_ROOT="+dir,
				fmt.Sprintf("TXN_LINE=user%02d:%d:65536", i, 1000000+i*65536))
			out, err := cmd.CombinedOutput()
			errs[i], outs[i] = err, string(out)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("child %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	got := stateOf(t, dir, "/etc/subuid").data
	if !strings.HasPrefix(got, subOld) {
		t.Fatalf("original lines lost:\n%s", got)
	}
	for i := range n {
		line := fmt.Sprintf("user%02d:%d:65536\n", i, 1000000+i*65536)
		if c := strings.Count(got, line); c != 1 {
			t.Errorf("%q present %d times", line, c)
		}
	}
	if lines := strings.Count(got, "\n"); lines != n+2 {
		t.Errorf("%d lines, want %d:\n%s", lines, n+2, got)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, DefaultStateDir, "backups"))
	if len(ents) != n {
		t.Fatalf("%d journal entries, want %d", len(ents), n)
	}
	res, err := Revert(ctx, hostAt(t, dir), testOpt)
	if err != nil {
		t.Fatal(err)
	}
	if stateOf(t, dir, "/etc/subuid").data != subOld {
		t.Fatalf("revert of %d stacked applies: %+v", n, res)
	}
}
