package apply_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/cmd"
)

// The test binary doubles as usernsctl for tests that need separate
// processes (concurrent applies, kills).
func TestMain(m *testing.M) {
	if os.Getenv("USERNSCTL_TEST_AS_CLI") == "1" {
		os.Exit(cmd.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cli runs usernsctl as a child process.
func cli(args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), "USERNSCTL_TEST_AS_CLI=1")
	return c
}

// tree copies fixtures/hosts/NAME into a temporary directory.
func tree(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "fixtures", "hosts", name)
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

type result struct {
	Schema          string
	Changed, Failed bool
	Msg, Fix        string
	Changes         []struct{ Path, Action, Backup, Diff string }
	Live            []struct{ Path, Before, Value string }
	Notes           []string
	Blocking        []struct{ ID string }
	RestartRequired bool `json:"restart_required"`
}

// run runs usernsctl in-process with --output json and decodes the result.
func run(t *testing.T, args ...string) (result, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cmd.Main(append(args, "--output", "json"), &out, &errb)
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("usernsctl %v: exit %d, not JSON: %v\n%s\n%s", args, code, err, out.String(), errb.String())
	}
	return r, code
}

// lockTemp is shadow's lock protocol file FILE.<pid>: a kill can leave one
// until the next lock of FILE removes it.
// The atomic writer's .NAME.usernsctl-* temporaries likewise, until the
// next transaction's recovery.
var lockTemp = regexp.MustCompile(`^etc/(passwd|group|shadow|gshadow|subuid|subgid)\.[0-9]+$|/\.[^/]+\.usernsctl-[0-9a-f]+$`)

// state is every file of a tree with its content hash and mtime, leaving
// out usernsctl's own state directory and glibc's lock file.
func state(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() || strings.HasPrefix(rel, "var/lib/usernsctl") || rel == "etc/.pwd.lock" || strings.HasSuffix(rel, ".lock") || lockTemp.MatchString(rel) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			m[rel] = "-> " + target
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		sum := sha256.Sum256(b)
		m[rel] = hex.EncodeToString(sum[:8]) + " " + fi.Mode().String() + " " + fi.ModTime().String()
		return nil
	})
	return m
}

func contentState(t *testing.T, dir string) map[string]string {
	m := state(t, dir)
	for k, v := range m {
		if strings.HasPrefix(v, "-> ") {
			continue
		}
		m[k] = strings.SplitN(v, " ", 3)[0] + " " + strings.SplitN(v, " ", 3)[1]
	}
	return m
}

func diffStates(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k+" (new)")
		}
	}
	return d
}

func read(t *testing.T, dir, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, dir, p, s string) {
	t.Helper()
	full := filepath.Join(dir, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
