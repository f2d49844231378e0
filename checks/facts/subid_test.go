package facts

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/internal/run"
)

// subidEnv is a snapshot host whose commands go to r (nil: nothing runs).
func subidEnv(t *testing.T, files map[string]string, r run.Runner) *checks.Env {
	t.Helper()
	env := checkstest.Env(t, "", files, "", nil)
	if r == nil {
		r = run.None{}
	}
	env.Run = r
	return env
}

func TestAccountsOf(t *testing.T) {
	env := subidEnv(t, map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n# a comment\n+::::::\nalice:x:1000:1000::/home/alice:/bin/sh\n",
		"/etc/group":  "root:x:0:\nalice:x:1000:\n-@netgroup\n",
	}, nil)
	a := AccountsOf(env)
	if a.Err != nil {
		t.Fatal(a.Err)
	}
	if len(a.Users) != 2 || len(a.Groups) != 2 {
		t.Fatalf("users %v groups %v", a.Users, a.Groups)
	}
	if u, ok := a.UserByName("alice"); !ok || u.Uid != 1000 {
		t.Errorf("UserByName: %v %v", u, ok)
	}
	if u, ok := a.UserByUID(0); !ok || u.Name != "root" {
		t.Errorf("UserByUID: %v %v", u, ok)
	}
	if g, ok := a.GroupByName("alice"); !ok || g.Gid != 1000 {
		t.Errorf("GroupByName: %v %v", g, ok)
	}
	if _, ok := a.UserByName("nobody"); ok {
		t.Errorf("found a missing user")
	}
	if got := a.UIDs(); len(got) != 2 || got[1] != 1000 {
		t.Errorf("UIDs %v", got)
	}
	again := AccountsOf(env)
	if again != a {
		t.Errorf("not loaded once per run")
	}
}

func TestAccountsOfBadInput(t *testing.T) {
	env := subidEnv(t, map[string]string{"/etc/group": "root:x:0:\n"}, nil)
	if err := AccountsOf(env).Err; !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("missing passwd: %v", err)
	}
	env = subidEnv(t, map[string]string{"/etc/passwd": "root:x:0:0::/:/bin/sh\n", "/etc/group": "<dir>"}, nil)
	if err := AccountsOf(env).Err; err == nil || !strings.Contains(err.Error(), "/etc/group") {
		t.Errorf("directory group: %v", err)
	}
	env = subidEnv(t, map[string]string{"/etc/passwd": strings.Repeat("x", 10<<20) + "\n", "/etc/group": ""}, nil)
	if err := AccountsOf(env).Err; err == nil || !strings.Contains(err.Error(), "/etc/passwd: a line is too long") {
		t.Errorf("10 MB line: %v", err)
	}
	env = subidEnv(t, map[string]string{"/etc/passwd": "\x7fELF\x00\x01\xff\n", "/etc/group": "\xff\xfe\n"}, nil)
	if err := AccountsOf(env).Err; err != nil {
		t.Errorf("binary junk should parse leniently, not fail: %v", err)
	}
}

func TestSubIDsOf(t *testing.T) {
	env := subidEnv(t, map[string]string{"/etc/subuid": "alice:100000:65536\nbad\n"}, nil)
	s := SubIDsOf(env)
	if !s.UID.Exists || s.UID.File == nil || s.UID.Err != nil || len(s.UID.File.Lines) != 2 || len(s.UID.File.Problems()) != 1 {
		t.Fatalf("subuid: %+v", s.UID)
	}
	if s.GID.Exists || s.GID.File != nil || s.GID.Err != nil {
		t.Fatalf("a missing subgid is a fact, not an error: %+v", s.GID)
	}
	if len(s.Files()) != 1 || s.Files()[0].Name != "/etc/subuid" {
		t.Fatalf("Files: %v", s.Files())
	}
	env = subidEnv(t, map[string]string{"/etc/subuid": "<dir>", "/etc/subgid": ""}, nil)
	s = SubIDsOf(env)
	if !s.UID.Exists || s.UID.File != nil || s.UID.Err == nil || !strings.Contains(s.UID.Err.Error(), "is a directory") {
		t.Fatalf("directory: %+v", s.UID)
	}
	if s.GID.File == nil || len(s.GID.File.Lines) != 0 {
		t.Fatalf("empty subgid: %+v", s.GID)
	}
}

func TestLoginDefsOf(t *testing.T) {
	env := subidEnv(t, nil, nil)
	l := LoginDefsOf(env)
	if l.Path != "" || l.Err != nil || l.Defs.SubUIDMin.Value != 100000 || l.Defs.SubUIDMax.Value != 600100000 {
		t.Fatalf("defaults: %+v %+v", l, l.Defs)
	}
	env = subidEnv(t, map[string]string{"/usr/etc/login.defs": "SUB_UID_MIN 200000\n"}, nil)
	if l := LoginDefsOf(env); l.Path != VendorLoginDefs || l.Defs.SubUIDMin.Value != 200000 {
		t.Fatalf("vendor file: %+v", l)
	}
	env = subidEnv(t, map[string]string{"/etc/login.defs": "SUB_UID_MIN 3\nSUB_UID_MAX junk\n", "/usr/etc/login.defs": "SUB_UID_MIN 200000\n"}, nil)
	l = LoginDefsOf(env)
	if l.Path != LoginDefsFile || l.Defs.SubUIDMin.Value != 3 || l.Err == nil || !strings.Contains(l.Err.Error(), "/etc/login.defs:2:13") {
		t.Fatalf("etc wins, bad value reported: %+v %v", l.Defs.SubUIDMin, l.Err)
	}
}

func TestNSSwitchOf(t *testing.T) {
	if n := NSSwitchOf(subidEnv(t, nil, nil)); n.Exists || !n.Subid.Files() {
		t.Fatalf("missing: %+v", n)
	}
	n := NSSwitchOf(subidEnv(t, map[string]string{"/etc/nsswitch.conf": "passwd: files\nsubid: sss\n"}, nil))
	if !n.Exists || n.Subid.Module != "sss" || n.Subid.Line != 2 {
		t.Fatalf("sss: %+v", n)
	}
}

// countingRunner counts runs, to show getsubids runs once per check run.
type countingRunner struct {
	run.Runner
	n atomic.Int32
}

func (c *countingRunner) Run(ctx context.Context, argv ...string) (run.Output, error) {
	c.n.Add(1)
	return c.Runner.Run(ctx, argv...)
}

func TestGetsubidsOf(t *testing.T) {
	rec, err := run.ParseRecorded(strings.NewReader(`{
		"getsubids kubelet": "0: kubelet 65536 7208960\n",
		"getsubids -g kubelet": {"stdout": "", "stderr": "Error fetching ranges\n", "exit": 1},
		"getsubids alice": "garbage\n"
	}`))
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingRunner{Runner: rec}
	env := subidEnv(t, nil, cr)
	ctx := context.Background()

	g := GetsubidsOf(ctx, env, "kubelet", false)
	if !g.Installed || g.Err != nil || g.NoRanges || len(g.Ranges) != 1 || g.Ranges[0].Count != 7208960 || g.Command != "getsubids kubelet" {
		t.Fatalf("uids: %+v", g)
	}
	g = GetsubidsOf(ctx, env, "kubelet", true)
	if !g.Installed || !g.NoRanges || g.Err != nil || g.Output != "Error fetching ranges" {
		t.Fatalf("no ranges: %+v", g)
	}
	g = GetsubidsOf(ctx, env, "alice", false)
	if g.Err == nil || !strings.Contains(g.Err.Error(), "getsubids alice") {
		t.Fatalf("garbage: %+v", g)
	}
	GetsubidsOf(ctx, env, "kubelet", false)
	if cr.n.Load() != 3 {
		t.Fatalf("ran %d commands, want 3 (each once)", cr.n.Load())
	}
	g = GetsubidsOf(ctx, subidEnv(t, nil, nil), "kubelet", false)
	if g.Installed {
		t.Fatalf("not installed: %+v", g)
	}
}
