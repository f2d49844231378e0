package udiff

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// gnuDiff runs diff -u on a and b and returns its output with the two
// header lines (which carry temp names and timestamps) removed.
func gnuDiff(t *testing.T, a, b []byte) string {
	t.Helper()
	if _, err := exec.LookPath("diff"); err != nil {
		t.Skip("diff is not installed")
	}
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(pa, a, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pb, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("diff", "-u", pa, pb).Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("diff -u: %v", err)
	}
	return stripHeaders(string(out))
}

func stripHeaders(s string) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) >= 2 && strings.HasPrefix(lines[0], "--- ") && strings.HasPrefix(lines[1], "+++ ") {
		return strings.Join(lines[2:], "")
	}
	return s
}

func numbered(n int, f func(i int) string) string {
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		sb.WriteString(f(i))
	}
	return sb.String()
}

// Real files usernsctl changes, and the edits apply makes to them.
var cases = []struct{ name, a, b string }{
	{"subuid append", "root:1000000:65536\nalice:100000:65536\n",
		"root:1000000:65536\nalice:100000:65536\ndockremap:165536:65536\n"},
	{"subuid append to file without final newline", "alice:100000:65536",
		"alice:100000:65536\ndockremap:165536:65536\n"},
	{"subuid long file, one line in the middle",
		numbered(40, func(i int) string { return "user" + itoa(i) + ":" + itoa(100000+i*65536) + ":65536\n" }),
		numbered(40, func(i int) string {
			s := "user" + itoa(i) + ":" + itoa(100000+i*65536) + ":65536\n"
			if i == 20 {
				s += "kubelet:4294836224:65536\n"
			}
			return s
		})},
	{"daemon.json key added", "{\n  \"log-driver\": \"journald\",\n  \"storage-driver\": \"overlay2\"\n}\n",
		"{\n  \"log-driver\": \"journald\",\n  \"storage-driver\": \"overlay2\",\n  \"userns-remap\": \"default\"\n}\n"},
	{"daemon.json value changed", "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3,\n  \"d\": 4,\n  \"userns-remap\": \"alice\",\n  \"e\": 5,\n  \"f\": 6,\n  \"g\": 7,\n  \"h\": 8\n}\n",
		"{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3,\n  \"d\": 4,\n  \"userns-remap\": \"default\",\n  \"e\": 5,\n  \"f\": 6,\n  \"g\": 7,\n  \"h\": 8\n}\n"},
	{"containerd imports line", "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"pause:3.9\"\n",
		"version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"pause:3.9\"\n"},
	{"two distant changes: two hunks",
		numbered(30, func(i int) string { return "line " + itoa(i) + "\n" }),
		strings.Replace(strings.Replace(numbered(30, func(i int) string { return "line " + itoa(i) + "\n" }),
			"line 3\n", "line three\n", 1), "line 27\n", "line twenty-seven\n", 1)},
	{"changes 6 lines apart: one hunk",
		numbered(20, func(i int) string { return "l" + itoa(i) + "\n" }),
		strings.Replace(strings.Replace(numbered(20, func(i int) string { return "l" + itoa(i) + "\n" }),
			"l5\n", "L5\n", 1), "l12\n", "L12\n", 1)},
	{"changes 7 lines apart: two hunks",
		numbered(20, func(i int) string { return "l" + itoa(i) + "\n" }),
		strings.Replace(strings.Replace(numbered(20, func(i int) string { return "l" + itoa(i) + "\n" }),
			"l5\n", "L5\n", 1), "l13\n", "L13\n", 1)},
	{"line removed", "a\nb\nc\nd\ne\n", "a\nb\nd\ne\n"},
	{"newline added at end", "a\nb", "a\nb\n"},
	{"newline removed at end", "a\nb\n", "a\nb"},
	{"whole file replaced", "x\ny\n", "p\nq\nr\n"},
	{"from empty", "", "one\ntwo\n"},
	{"to empty", "one\ntwo\n", ""},
	{"sysctl drop-in", "# hardening\nkernel.kptr_restrict = 2\nuser.max_user_namespaces = 0\nnet.ipv4.ip_forward = 1\n",
		"# hardening\nkernel.kptr_restrict = 2\nuser.max_user_namespaces = 28633\nnet.ipv4.ip_forward = 1\n"},
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestMatchesGNUDiff(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Unified("/etc/x", "/etc/x", []byte(c.a), []byte(c.b))
			if !strings.HasPrefix(got, "--- /etc/x\n+++ /etc/x\n") {
				t.Fatalf("headers: %q", got)
			}
			want := gnuDiff(t, []byte(c.a), []byte(c.b))
			if stripHeaders(got) != want {
				t.Errorf("hunks differ from diff -u\n--- ours\n%s--- diff -u\n%s", stripHeaders(got), want)
			}
		})
	}
}

func TestEqualIsEmpty(t *testing.T) {
	if d := Unified("a", "b", []byte("x\n"), []byte("x\n")); d != "" {
		t.Fatalf("equal content gave %q", d)
	}
	if d := Unified("a", "b", nil, []byte{}); d != "" {
		t.Fatalf("empty content gave %q", d)
	}
}

func TestCreatedFileHeaders(t *testing.T) {
	got := Unified(DevNull, "/etc/containerd/conf.d/usernsctl.toml", nil, []byte("version = 2\n"))
	want := "--- /dev/null\n+++ /etc/containerd/conf.d/usernsctl.toml\n@@ -0,0 +1 @@\n+version = 2\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestBinary(t *testing.T) {
	got := Unified("/etc/a", "/etc/a", []byte("x\x00y"), []byte("x\n"))
	if got != "Binary files /etc/a and /etc/a differ\n" {
		t.Fatalf("got %q", got)
	}
}

// TestRandomAgainstPatch diffs random small files (few distinct lines, so
// many equal-cost alignments) and checks that patch(1) turns a into b with
// our diff, and that our diff changes exactly as many lines as diff -u
// (both minimal).
func TestRandomAgainstPatch(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch is not installed")
	}
	r := rand.New(rand.NewPCG(1, 2))
	gen := func() []byte {
		n := r.IntN(30)
		var sb strings.Builder
		for range n {
			sb.WriteString([]string{"a\n", "b\n", "c\n", "d\n"}[r.IntN(4)])
		}
		s := sb.String()
		if r.IntN(5) == 0 && len(s) > 0 {
			s = s[:len(s)-1]
		}
		return []byte(s)
	}
	dir := t.TempDir()
	for i := range 150 {
		a, b := gen(), gen()
		d := Unified("f", "f", a, b)
		if bytes.Equal(a, b) {
			if d != "" {
				t.Fatalf("equal inputs gave a diff")
			}
			continue
		}
		f := filepath.Join(dir, "f")
		if err := os.WriteFile(f, a, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("patch", "-s", "--no-backup-if-mismatch", f)
		cmd.Stdin = strings.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("case %d: patch failed: %v\n%s\na=%q b=%q\n%s", i, err, out, a, b, d)
		}
		got, _ := os.ReadFile(f)
		if !bytes.Equal(got, b) {
			t.Fatalf("case %d: patched %q, want %q\n%s", i, got, b, d)
		}
		if ours, gnu := changed(d), changed(gnuDiff(t, a, b)); ours != gnu {
			t.Fatalf("case %d: we change %d lines, diff -u %d\na=%q b=%q\n%s", i, ours, gnu, a, b, d)
		}
	}
}

func changed(d string) int {
	n := 0
	for _, l := range strings.Split(d, "\n") {
		if (strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++")) || (strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---")) {
			n++
		}
	}
	return n
}

// TestLargeRewriteIsBounded: a wholesale rewrite of a large file must not
// go quadratic; past the cost limit the diff is still correct.
func TestLargeRewriteIsBounded(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch is not installed")
	}
	a := numbered(30000, func(i int) string { return "a" + itoa(i) + "\n" })
	b := numbered(30000, func(i int) string { return "b" + itoa(i) + "\n" })
	d := Unified("f", "f", []byte(a), []byte(b))
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, []byte(a), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("patch", "-s", f)
	cmd.Stdin = strings.NewReader(d)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("patch: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(f); string(got) != b {
		t.Fatal("patched file differs")
	}
}

func BenchmarkOneLineIn100k(b *testing.B) {
	a := numbered(100000, func(i int) string { return "u" + itoa(i) + ":" + itoa(i*65536) + ":65536\n" })
	n := a + "dockremap:1:65536\n"
	for b.Loop() {
		Unified("/etc/subuid", "/etc/subuid", []byte(a), []byte(n))
	}
}
