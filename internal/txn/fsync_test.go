package txn

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// syscallRec is one traced system call.
type syscallRec struct {
	name string
	args []string // top-level arguments, strings unquoted
	ret  string
}

var (
	straceLine = regexp.MustCompile(`^(\d+)\s+(.*)$`)
	backupFile = regexp.MustCompile(`^\d+-`)
)

// parseStrace reads `strace -f -o` output, joining unfinished and resumed
// halves of a call.
func parseStrace(text string) []syscallRec {
	var out []syscallRec
	pending := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		m := straceLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pid, rest := m[1], m[2]
		if head, ok := strings.CutSuffix(rest, " <unfinished ...>"); ok {
			pending[pid] = head
			continue
		}
		if strings.HasPrefix(rest, "<... ") {
			i := strings.Index(rest, "resumed>")
			if i < 0 {
				continue
			}
			rest = pending[pid] + rest[i+len("resumed>"):]
			delete(pending, pid)
		}
		open := strings.IndexByte(rest, '(')
		eq := strings.LastIndex(rest, " = ")
		if open < 0 || eq < 0 || eq < open {
			continue
		}
		call := syscallRec{name: rest[:open], ret: strings.Fields(rest[eq+3:])[0]}
		argText := strings.TrimSuffix(strings.TrimSpace(rest[open+1:eq]), ")")
		call.args = splitArgs(argText)
		out = append(out, call)
	}
	return out
}

// splitArgs splits at top-level commas, outside quotes and braces.
func splitArgs(s string) []string {
	var args []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ',' && depth == 0:
			args = append(args, strings.Trim(strings.TrimSpace(s[start:i]), `"`))
			start = i + 1
		}
	}
	return append(args, strings.Trim(strings.TrimSpace(s[start:]), `"`))
}

// TestFsyncOrder traces a real commit and checks the durability protocol
// a power cut needs (which a kill cannot show): every temporary file and
// backup is fsynced before it is renamed or relied on, every rename and
// unlink is followed by an fsync of its directory, and the manifest that
// lists the backups is durable before the first target is replaced.
func TestFsyncOrder(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace is not installed")
	}
	dir := newTree(t)
	tracePath := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command("strace", "-f", "-qq", "-o", tracePath,
		"-e", "trace=openat,openat2,fsync,fdatasync,close,renameat,renameat2,unlinkat",
		os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TXN_CHILD=apply", "TXN_ROOT="+dir, "GOMAXPROCS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "ptrace") {
			t.Skipf("strace cannot trace here: %s", out)
		}
		t.Fatalf("strace: %v\n%s", err, out)
	}
	allAre(t, dir, "new")
	b, err := os.ReadFile(tracePath)
	if err != nil {
		t.Fatal(err)
	}
	calls := parseStrace(string(b))

	type fdInfo struct {
		name   string
		backup bool
		synced bool
	}
	fds := map[string]*fdInfo{}
	dirDirty := map[string]string{} // dir fd -> what made it dirty
	var renames, unlinks, backups int
	manifestDurable, manifestDir := false, ""
	for _, c := range calls {
		switch c.name {
		case "openat", "openat2":
			if len(c.args) >= 2 && !strings.HasPrefix(c.ret, "-") {
				f := &fdInfo{name: c.args[1]}
				if strings.Contains(c.args[2], "O_EXCL") && backupFile.MatchString(c.args[1]) {
					f.backup = true
					backups++
				}
				fds[c.ret] = f
			}
		case "fsync", "fdatasync":
			if f := fds[c.args[0]]; f != nil {
				f.synced = true
			}
			delete(dirDirty, c.args[0])
		case "close":
			fd := c.args[0]
			if f := fds[fd]; f != nil && f.backup && !f.synced {
				t.Errorf("backup %s closed without fsync", f.name)
			}
			if why, dirty := dirDirty[fd]; dirty {
				t.Errorf("directory closed without fsync after %s", why)
			}
			delete(fds, fd)
			delete(dirDirty, fd)
		case "renameat", "renameat2":
			from, to := c.args[1], c.args[3]
			if !strings.Contains(from, tempMarker) {
				continue
			}
			renames++
			if !syncedBefore(calls, c, from) {
				t.Errorf("%s renamed to %s without fsync", from, to)
			}
			if to == manifestName {
				manifestDir = c.args[0]
			} else if !manifestDurable {
				t.Errorf("%s replaced before the manifest was durable", to)
			}
			dirDirty[c.args[0]] = "rename to " + to
		case "unlinkat":
			if c.ret == "0" && c.args[1] == "99-hardening.conf" {
				unlinks++
				dirDirty[c.args[0]] = "unlink of " + c.args[1]
			}
		}
		// The manifest is durable once its directory is synced.
		if c.name == "fsync" && manifestDir != "" && c.args[0] == manifestDir {
			manifestDurable = true
		}
	}
	if want := len(scenario) - 1 + 2; renames != want { // targets except the removed one, two manifests
		t.Errorf("%d atomic renames traced, want %d", renames, want)
	}
	if unlinks != 1 {
		t.Errorf("%d unlinks of the removed file traced, want 1", unlinks)
	}
	if backups != 5 {
		t.Errorf("%d backups traced, want 5", backups)
	}
	for fd, why := range dirDirty {
		t.Errorf("directory fd %s never fsynced after %s", fd, why)
	}
}

// syncedBefore reports whether a file opened as name was fsynced between
// its open and the call at.
func syncedBefore(calls []syscallRec, at syscallRec, name string) bool {
	fd := ""
	synced := false
	for _, c := range calls {
		if c.name == at.name && strings.Join(c.args, ",") == strings.Join(at.args, ",") {
			return synced
		}
		switch c.name {
		case "openat":
			if len(c.args) >= 2 && c.args[1] == name {
				fd, synced = c.ret, false
			}
		case "fsync", "fdatasync":
			if fd != "" && c.args[0] == fd {
				synced = true
			}
		case "close":
			if c.args[0] == fd {
				fd = "" // closed: keep synced as it was
			}
		}
	}
	return false
}
