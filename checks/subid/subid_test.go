package subid

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/remap"
)

const passwd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/bash
`

const group = `root:x:0:
daemon:x:1:
nogroup:x:65534:
alice:x:1000:
`

// tree is a snapshot tree in hosttree.Tree's forms ("<dir>" makes a
// directory).
type tree map[string]string

// with returns the base account files plus extra.
func with(extra tree) tree {
	t := tree{"/etc/passwd": passwd, "/etc/group": group}
	for k, v := range extra {
		t[k] = v
	}
	return t
}

func run1(t *testing.T, id string, env *checks.Env) checks.Result {
	t.Helper()
	return checkstest.Run(t, Checkers(), id, env)
}

// expect asserts the status and that message and remedy contain the given
// fragments ("msg" then "remedy" lists).
func expect(t *testing.T, name string, r checks.Result, st checks.Status, msg []string, remedy ...string) {
	t.Helper()
	if r.Status != st {
		t.Errorf("%s: status %s, want %s\nmessage: %s\nremedy: %s", name, r.Status, st, r.Message, r.Remedy)
		return
	}
	for _, m := range msg {
		if !strings.Contains(r.Message, m) {
			t.Errorf("%s: message lacks %q:\n%s", name, m, r.Message)
		}
	}
	for _, m := range remedy {
		if !strings.Contains(r.Remedy, m) {
			t.Errorf("%s: remedy lacks %q:\n%s", name, m, r.Remedy)
		}
	}
	if st != checks.Pass && st != checks.Skip && r.Remedy == "" {
		t.Errorf("%s: %s without a remedy", name, st)
	}
}

func TestFiles(t *testing.T) {
	good := "alice:100000:65536\ndockremap:165536:65536\n"
	cases := []struct {
		name   string
		target checks.Target
		files  tree
		st     checks.Status
		msg    []string
		remedy []string
	}{
		{"well-formed", checks.Docker, tree{"/etc/subuid": good, "/etc/subgid": good}, checks.Pass,
			[]string{"/etc/subuid (2 lines) and /etc/subgid (2 lines) are well-formed"}, nil},
		{"one line each", checks.Docker, tree{"/etc/subuid": "alice:100000:65536\n", "/etc/subgid": "alice:100000:65536\n"}, checks.Pass,
			[]string{"/etc/subuid (1 line) and /etc/subgid (1 line) are well-formed"}, nil},
		{"both missing, docker (field case 5)", checks.Docker, tree{}, checks.Fail,
			[]string{"/etc/subuid and /etc/subgid missing", "open /etc/subuid: no such file or directory"}, []string{"usernsctl apply --target docker"}},
		{"subgid missing, rootless", checks.Rootless, tree{"/etc/subuid": good}, checks.Fail,
			[]string{"/etc/subgid missing", "newuidmap"}, []string{"touch /etc/subgid", "usermod --add-subuids 231072-296607"}},
		{"missing, containerd", checks.Containerd, tree{}, checks.Skip, []string{"containerd does not read them"}, nil},
		{"missing, kubernetes", checks.Kubernetes, tree{}, checks.Skip, []string{"subid.kubelet"}, nil},
		{"no trailing newline (shadow 4.19)", checks.Docker, tree{"/etc/subuid": "alice:100000:65536", "/etc/subgid": good}, checks.Fail,
			[]string{"/etc/subuid:1: no newline at the end of the file: shadow 4.19"}, []string{`printf '\n' >> /etc/subuid`}},
		{"comment and blank lines", checks.Docker, tree{"/etc/subuid": "# ranges\nalice:100000:65536\n\n", "/etc/subgid": good}, checks.Warn,
			[]string{"/etc/subuid:1:1: comment line", "/etc/subuid:3: empty line"}, []string{"sed -i '1d;3d' /etc/subuid"}},
		{"malformed line", checks.Docker, tree{"/etc/subuid": good, "/etc/subgid": good + "bob:0x10000:65536\n"}, checks.Fail,
			[]string{"/etc/subgid:3:5: start \"0x10000\" is not a decimal number"}, []string{"correct line 3 of /etc/subgid", "or delete it", "sed -i '3d' /etc/subgid"}},
		{"malformed line, containerd only warns", checks.Containerd, tree{"/etc/subuid": good, "/etc/subgid": "bob:1\n"}, checks.Warn,
			[]string{"/etc/subgid:1: 2 field(s)"}, nil},
		{"CRLF", checks.Docker, tree{"/etc/subuid": "alice:100000:65536\r\n", "/etc/subgid": good}, checks.Fail,
			[]string{"carriage return"}, []string{`sed -i 's/\r$//' /etc/subuid`}},
		{"binary file", checks.Docker, tree{"/etc/subuid": "\x7fELF\x02\x01\x01\x00\x00\n\xff\xfe\x00\x00\n", "/etc/subgid": good}, checks.Fail,
			[]string{"/etc/subuid holds binary data (2 of 2 lines)"}, []string{"cp -p /etc/subuid- /etc/subuid"}},
		{"10 MB line", checks.Docker, tree{"/etc/subuid": good + strings.Repeat("x", 10<<20) + "\n", "/etc/subgid": good}, checks.Fail,
			[]string{"/etc/subuid:3: line is 10485760 bytes long"}, []string{"sed -i '3d' /etc/subuid"}},
		{"invalid UTF-8", checks.Docker, tree{"/etc/subuid": "al\xc3\x28ce:100000:65536\n", "/etc/subgid": good}, checks.Fail,
			[]string{"/etc/subuid:1:3: invalid UTF-8"}, nil},
		{"directory where the file should be", checks.Docker, tree{"/etc/subuid": "<dir>", "/etc/subgid": good}, checks.Fail,
			[]string{"cannot read /etc/subuid", "is a directory"}, []string{"mv /etc/subuid /etc/subuid.dir && touch /etc/subuid"}},
	}
	for _, c := range cases {
		env := checkstest.Env(t, c.target, with(c.files), "", nil)
		expect(t, c.name, run1(t, "subid.files", env), c.st, c.msg, c.remedy...)
	}
}

func TestFilesLongMessageIsBounded(t *testing.T) {
	var b strings.Builder
	for range 5000 {
		b.WriteString("junk\n")
	}
	env := checkstest.Env(t, checks.Docker, with(tree{"/etc/subuid": b.String(), "/etc/subgid": ""}), "", nil)
	r := run1(t, "subid.files", env)
	if r.Status != checks.Fail || !strings.Contains(r.Message, "5000 problems in /etc/subuid") || !strings.Contains(r.Message, "and 4995 more") || len(r.Message) > 2000 {
		t.Fatalf("%s: %d bytes: %.300s", r.Status, len(r.Message), r.Message)
	}
}

func TestOverlap(t *testing.T) {
	cases := []struct {
		name   string
		subuid string
		subgid string
		st     checks.Status
		msg    []string
		remedy []string
	}{
		{"disjoint; the same range in both files is normal", "alice:100000:65536\ndockremap:165536:65536\n", "alice:100000:65536\ndockremap:165536:65536\n", checks.Pass,
			[]string{"no two of the 4 ranges"}, nil},
		{"two owners (field case 9)", "alice:100000:65536\ndockremap:100000:65536\n", "", checks.Fail,
			[]string{"/etc/subuid:1 (alice:100000:65536) and /etc/subuid:2 (dockremap:100000:65536) share ids 100000-165535", "act on each other's files"},
			[]string{"sed -i '2d' /etc/subuid"}},
		{"one line twice (usermod -v)", "alice:100000:65536\nbob:165536:65536\nalice:100000:65536\n", "", checks.Fail,
			[]string{"/etc/subuid:1 (alice:100000:65536) and /etc/subuid:3 (alice:100000:65536)", "the same line twice"}, []string{"sed -i '3d' /etc/subuid"}},
		{"name and uid of one account (field case 7)", "", "alice:100000:65536\n1000:100000:65536\n", checks.Fail,
			[]string{"/etc/subgid:1", "/etc/subgid:2", "are the same account"}, nil},
		{"a small range inside a large one", "big:100000:1000000\nsmall:500000:10\n", "", checks.Fail,
			[]string{"share ids 500000-500009"}, nil},
		{"adjacent is not overlapping", "a:100000:65536\nb:165536:65536\n", "", checks.Pass, nil, nil},
		// Identical files are parsed once and share their lines: each file
		// is still reported under its own name.
		{"identical files overlap alike", "alice:100000:65536\ndockremap:100000:65536\n", "alice:100000:65536\ndockremap:100000:65536\n", checks.Fail,
			[]string{"/etc/subuid:1 (alice:100000:65536) and /etc/subuid:2", "/etc/subgid:1 (alice:100000:65536) and /etc/subgid:2", "2 overlapping ranges"},
			[]string{"sed -i '2d' /etc/subuid", "sed -i '2d' /etc/subgid"}},
	}
	for _, c := range cases {
		env := checkstest.Env(t, checks.Docker, with(tree{"/etc/subuid": c.subuid, "/etc/subgid": c.subgid}), "", nil)
		expect(t, c.name, run1(t, "subid.overlap", env), c.st, c.msg, c.remedy...)
	}
	env := checkstest.Env(t, checks.Docker, with(nil), "", nil)
	expect(t, "no files", run1(t, "subid.overlap", env), checks.Skip, []string{"see subid.files"})
}

func TestOverlapScales(t *testing.T) {
	// 20,000 lines all overlapping one huge range: every line reported
	// once, in n log n.
	var b strings.Builder
	b.WriteString("huge:100000:100000000\n")
	for i := range 20000 {
		b.WriteString("u")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(":")
		b.WriteString(strconv.Itoa(200000 + i*10))
		b.WriteString(":5\n")
	}
	f, err := subid.Parse(strings.NewReader(b.String()), "/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(overlaps(f)); n != 20000 {
		t.Fatalf("got %d overlaps, want 20000", n)
	}
}

func TestAccountIDs(t *testing.T) {
	env := checkstest.Env(t, checks.Docker, with(tree{
		"/etc/subuid": "alice:1000:65536\ndockremap:165536:65536\n",
		"/etc/subgid": "alice:100000:65536\nnogroup:0:70000\n",
	}), "", nil)
	r := run1(t, "subid.account_uids", env)
	expect(t, "account ids inside", r, checks.Fail, []string{
		"/etc/subuid:1 (alice:1000:65536) contains uid 1000 (alice), uid 65534 (nobody) from /etc/passwd — its owner's own id",
		"/etc/subgid:2 (nogroup:0:70000) contains gid 0 (root), gid 1 (daemon), gid 1000 (alice), and 1 more from /etc/group",
		"write to uid_map failed: Invalid argument",
	}, "sed -i '1s/.*/alice:231072:65536/' /etc/subuid", "sed -i '2s/.*/nogroup:296608:70000/' /etc/subgid")
	if r.Evidence["ranges_with_account_ids"] != 2 {
		t.Errorf("evidence %v", r.Evidence)
	}

	env = checkstest.Env(t, checks.Docker, with(tree{"/etc/subuid": "alice:100000:65536\n", "/etc/subgid": "alice:100000:65536\n"}), "", nil)
	expect(t, "clean", run1(t, "subid.account_uids", env), checks.Pass, []string{"4 users, 4 groups"})

	env = checkstest.Env(t, checks.Docker, tree{"/etc/subuid": "alice:100000:65536\n"}, "", nil)
	expect(t, "no passwd", run1(t, "subid.account_uids", env), checks.Warn, []string{"/etc/passwd"})
}

// remapEnv is a Docker host whose accounts include the remap user.
func remapEnv(t *testing.T, extraPasswd, extraGroup string, files tree, commands string) *checks.Env {
	files = with(files)
	files["/etc/passwd"] += extraPasswd
	files["/etc/group"] += extraGroup
	return checkstest.Env(t, checks.Docker, files, commands, nil)
}

func judge(t *testing.T, env *checks.Env, value, source string) checks.Result {
	t.Helper()
	if _, err := remap.ParseSpec(value); err != nil {
		t.Fatalf("ParseSpec(%q): %v", value, err)
	}
	if acc := facts.AccountsOf(env); acc.Err != nil {
		t.Fatal(acc.Err)
	}
	env.User = value // the spec as --user names it
	return run1(t, "subid.remap_user", env)
}

const (
	docker20  = `{"dockerd --version": "Docker version 20.10.24+dfsg1, build 5d6db84\n"}`
	docker27  = `{"dockerd --version": "Docker version 27.3.1, build ce12230\n"}`
	docker28  = `{"dockerd --version": "Docker version 28.5.2, build 3ef3c07\n"}`
	docker297 = `{"dockerd --version": "Docker version 29.7.2, build 1\n"}`
)

const dockremapPW = "dockremap:x:999:989::/home/dockremap:/bin/false\n"
const dockremapGR = "dockremap:x:989:\n"

func TestRemapUser(t *testing.T) {
	src := "daemon.json /etc/docker/daemon.json"
	cases := []struct {
		name       string
		pw, gr     string
		subuid     string
		subgid     string
		osrelease  string
		value      string
		commands   string
		st         checks.Status
		msg        []string
		remedy     []string
		evidenceOK func(map[string]any) bool
	}{
		{name: "dockremap ready", pw: dockremapPW, gr: dockremapGR,
			subuid: "alice:100000:65536\ndockremap:165536:65536\n", subgid: "alice:100000:65536\ndockremap:165536:65536\n",
			value: "default", st: checks.Pass,
			msg: []string{"container root is host uid 165536, gid 165536", "/etc/subuid:2 (dockremap:165536:65536)"},
			evidenceOK: func(e map[string]any) bool {
				return e["container_root"] == "165536:165536" && e["user"] == "dockremap" && e["uid"] == 999
			}},
		{name: "by uid in the files", pw: dockremapPW, gr: dockremapGR,
			subuid: "999:165536:65536\n", subgid: "999:165536:65536\n", value: "default", st: checks.Pass},
		{name: "default, nothing yet, dockerd 28", value: "default", commands: `{"dockerd --version": "Docker version 28.5.2, build 3ef3c07\n"}`,
			subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n", st: checks.Warn,
			msg: []string{"/etc/subuid has no range for dockremap", "can overlap other users' ranges"}, remedy: []string{"usernsctl apply --target docker"}},
		// dockerd of every version creates dockremap and allocates its
		// ranges itself (moby's AddNamespaceRangesUser), but only when the
		// account does not exist yet.
		{name: "default, nothing yet, dockerd 20.10", value: "default", commands: `{"dockerd --version": "Docker version 20.10.24+dfsg1, build 5d6db84\n"}`,
			subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n", st: checks.Warn, remedy: []string{"usernsctl apply --target docker"},
			msg: []string{"dockerd would create dockremap at start and allocate its ranges itself", "dockerd 20.10.24+dfsg1 skipping past the existing lines"}},
		{name: "dockremap made by useradd -r, no ranges (field case 5)", pw: dockremapPW, gr: dockremapGR, value: "default",
			subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n", st: checks.Fail,
			commands: `{"dockerd --version": "Docker version 20.10.24+dfsg1, build 5d6db84\n"}`,
			msg:      []string{"the dockremap account exists already, so dockerd does not allocate ranges", "`Can't create ID mappings: no subuid ranges found for user \"dockremap\"`"}},
		{name: "default, no subuid file (field case 5)", value: "default", commands: `{"dockerd --version": "Docker version 28.5.2, build 3ef3c07\n"}`,
			subuid: "<none>", subgid: "", st: checks.Fail,
			msg: []string{"/etc/subuid does not exist", "dockerd would create dockremap but cannot record its ranges",
				"`Error during \"dockremap\" user creation: couldn't create subordinate ID ranges: error while looking for subuid ranges for user \"dockremap\": open /etc/subuid: no such file or directory`",
				"the account then exists without ranges"}},
		{name: "default, no subgid file, dockerd 20.10", value: "default", commands: docker20,
			subuid: "", subgid: "<none>", st: checks.Fail,
			msg: []string{"`Error during \"dockremap\" user creation: Couldn't create subordinate ID ranges: error while looking for subgid ranges for user \"dockremap\": open /etc/subgid: no such file or directory`"}},
		{name: "group-keyed subgid (field case 6)", pw: "mapuser:x:1500:1600::/:/bin/false\n", gr: "mapgroup:x:1600:\n",
			subuid: "mapuser:200000:65536\n", subgid: "mapgroup:200000:65536\n", value: "mapuser:mapgroup", st: checks.Fail, commands: docker28,
			msg: []string{
				`/etc/subgid has no range for mapuser (matched by "mapuser" or "1500")`,
				"/etc/subgid has a range for the group (/etc/subgid:1 (mapgroup:200000:65536)), but dockerd looks /etc/subgid up by the USER mapuser, never by the group",
				"`Can't create ID mappings: no subuid ranges found for user \"mapuser\"`",
			}, remedy: []string{"usernsctl apply --target docker --user mapuser:mapgroup"}},
		{name: "subuid only", pw: "mapuser:x:1500:1500::/:/bin/false\n", gr: "mapuser:x:1500:\n",
			subuid: "mapuser:200000:65536\n", subgid: "alice:100000:65536\n", value: "mapuser", st: checks.Fail, commands: docker28,
			msg: []string{"/etc/subgid has no range for mapuser", "`Can't create ID mappings: no subuid ranges found for user \"mapuser\"` (dockerd 28.0 and later say subuid although it is /etc/subgid that lacks the range)"}},
		// R15: before 28.0 the subgid text names subgid; 29.7 rewords the prefix.
		{name: "subuid only, dockerd 27", pw: "mapuser:x:1500:1500::/:/bin/false\n", gr: "mapuser:x:1500:\n",
			subuid: "mapuser:200000:65536\n", subgid: "alice:100000:65536\n", value: "mapuser", st: checks.Fail, commands: docker27,
			msg: []string{"`Can't create ID mappings: no subgid ranges found for user \"mapuser\"`"}},
		{name: "no range, dockerd 29.7", pw: "mapuser:x:1500:1500::/:/bin/false\n", gr: "mapuser:x:1500:\n",
			subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n", value: "1500", st: checks.Fail, commands: docker297,
			msg: []string{"`error creating ID mappings: no subuid ranges found for user \"mapuser\"`"}},
		{name: "no subgid file", pw: "mapuser:x:1500:1500::/:/bin/false\n", gr: "mapuser:x:1500:\n",
			subuid: "mapuser:200000:65536\n", subgid: "<none>", value: "mapuser", st: checks.Fail, commands: docker28,
			msg: []string{"/etc/subgid does not exist", "dockerd fails to start with `Can't create ID mappings: open /etc/subgid: no such file or directory`"}},
		{name: "explicit user missing", value: "ghost", subuid: "", subgid: "", st: checks.Fail,
			msg: []string{"the remap user ghost", "is not in /etc/passwd"}, remedy: []string{"useradd --system"}},
		{name: "too few ids", pw: dockremapPW, gr: dockremapGR, value: "default",
			subuid: "dockremap:165536:1000\n", subgid: "dockremap:165536:65536\n", st: checks.Fail, commands: docker27,
			msg: []string{"/etc/subuid gives dockremap only 1000 uids", "dockerd starts, but", "`Container ID 65534 cannot be mapped to a host ID`"}},
		{name: "several ranges (field case 10)", pw: dockremapPW, gr: dockremapGR, value: "default",
			subuid: "dockremap:300000:65536\ndockremap:165536:65536\n", subgid: "dockremap:165536:65536\n", st: checks.Warn,
			msg: []string{"/etc/subuid has 2 ranges for dockremap", "container uid 0 is host uid 300000"}},
		// R18: moby has no limit on the number of ranges; all are joined.
		{name: "six ranges are all used", pw: dockremapPW, gr: dockremapGR, value: "default",
			subuid: "dockremap:100000:10000\ndockremap:110000:10000\ndockremap:120000:10000\ndockremap:130000:10000\ndockremap:140000:10000\ndockremap:150000:20000\n",
			subgid: "dockremap:100000:65536\n", st: checks.Warn,
			msg:        []string{"/etc/subuid has 6 ranges for dockremap", "/etc/subuid:6 (dockremap:150000:20000)", "container uid 0 is host uid 100000"},
			evidenceOK: func(e map[string]any) bool { return len(e["subuid_ranges"].([]string)) == 6 }},
		// The kernel takes 5 map lines before 4.15, 340 from then on.
		{name: "six ranges on kernel 4.14", pw: dockremapPW, gr: dockremapGR, value: "default", osrelease: "4.14.336\n",
			subuid: "dockremap:100000:10000\ndockremap:110000:10000\ndockremap:120000:10000\ndockremap:130000:10000\ndockremap:140000:10000\ndockremap:150000:20000\n",
			subgid: "dockremap:100000:65536\n", st: checks.Fail,
			msg: []string{"/etc/subuid gives dockremap 6 ranges", "kernel 4.14.336 (before 4.15) takes at most 5", "EINVAL"}},
		{name: "341 ranges", pw: dockremapPW, gr: dockremapGR, value: "default", osrelease: "6.12.0\n",
			subuid: manyRanges(341), subgid: "dockremap:100000:65536\n", st: checks.Fail,
			msg: []string{"/etc/subuid gives dockremap 341 ranges", "the kernel takes at most 340"}},
		{name: "340 ranges", pw: dockremapPW, gr: dockremapGR, value: "default", osrelease: "6.12.0\n",
			subuid: manyRanges(340), subgid: "dockremap:100000:65536\n", st: checks.Warn,
			msg: []string{"/etc/subuid has 340 ranges for dockremap"}},
		// R17: 28.0 and later use name and uid lines in file order.
		{name: "name and uid lines, dockerd 28", pw: dockremapPW, gr: dockremapGR, value: "default", commands: docker28,
			subuid: "dockremap:165536:65536\n999:231072:65536\n", subgid: "dockremap:165536:65536\n", st: checks.Warn,
			msg:        []string{"lists dockremap both by name and by uid 999: dockerd uses both lines, in file order", "container uid 0 is host uid 165536"},
			evidenceOK: func(e map[string]any) bool { return e["container_root"] == "165536:165536" }},
		// R17: before 28.0 the uid's lines win and the name's are ignored.
		{name: "name and uid lines, dockerd 27", pw: dockremapPW, gr: dockremapGR, value: "default", commands: docker27,
			subuid: "dockremap:165536:65536\n999:231072:65536\n", subgid: "dockremap:165536:65536\n", st: checks.Warn,
			msg:        []string{"dockerd 27.3.1 maps only the lines of uid 999 and ignores /etc/subuid:1 (dockremap:165536:65536)"},
			evidenceOK: func(e map[string]any) bool { return e["container_root"] == "231072:165536" }},
		// R9: only the name root turns remapping off; toor is remapped.
		{name: "uid 0 under another name", pw: "toor:x:0:0::/:/bin/sh\n", gr: "toor:x:0:\n", value: "toor", st: checks.Pass,
			subuid: "toor:300000:65536\n", subgid: "toor:300000:65536\n", msg: []string{"container root is host uid 300000"}},
		{name: "root", value: "root", st: checks.Skip, msg: []string{"resolves to root: dockerd turns user namespaces off"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {

			files := tree{"/etc/subuid": c.subuid, "/etc/subgid": c.subgid}
			if c.osrelease != "" {
				files["/proc/sys/kernel/osrelease"] = c.osrelease
			}
			for p, content := range files {
				if content == "<none>" {
					delete(files, p)
				}
			}
			env := remapEnv(t, c.pw, c.gr, files, c.commands)
			r := judge(t, env, c.value, src)
			expect(t, c.name, r, c.st, c.msg, c.remedy...)
			if c.evidenceOK != nil && !c.evidenceOK(r.Evidence) {
				t.Errorf("%s: evidence %v", c.name, r.Evidence)
			}
		})
	}
}

// manyRanges is n ranges of 256 ids for dockremap.
func manyRanges(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("dockremap:" + strconv.Itoa(100000+i*256) + ":256\n")
	}
	return b.String()
}

func TestRemapUserThroughDaemonJSON(t *testing.T) {
	// A value dockerd refuses: whatever reads daemon.json reports an error,
	// and the check says it cannot tell the user.
	env := remapEnv(t, "", "", tree{"/etc/docker/daemon.json": `{"userns-remap": "a:b:c"}`}, "")
	expect(t, "bad value", run1(t, "subid.remap_user", env), checks.Warn, []string{"cannot tell the remap user"})

	env = remapEnv(t, "mapuser:x:1500:1600::/:/bin/false\n", "mapgroup:x:1600:\n", tree{
		"/etc/docker/daemon.json": `{"userns-remap": "mapuser:mapgroup"}`,
		"/etc/subuid":             "mapuser:200000:65536\n",
		"/etc/subgid":             "mapgroup:200000:65536\n",
	}, "")
	expect(t, "daemon.json mapuser:mapgroup", run1(t, "subid.remap_user", env), checks.Fail,
		[]string{"never by the group", "/etc/docker/daemon.json"})
}

func getsubids(uid, gid string) string {
	q := func(s string) string {
		if s == "none" {
			return `{"stdout": "", "stderr": "Error fetching ranges\n", "exit": 1}`
		}
		return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
	}
	return `{"getsubids kubelet": ` + q(uid) + `, "getsubids -g kubelet": ` + q(gid) + `}`
}

const kubeletPW = "kubelet:x:998:998::/var/lib/kubelet:/usr/sbin/nologin\n"

func TestKubelet(t *testing.T) {
	docs := "0: kubelet 65536 7208960\n"
	sss := "passwd: files\ngroup: files\nsubid: sss\n"
	cases := []struct {
		name           string
		pw             string
		subuid, subgid string // the kubelet's lines; subgid "" = as subuid
		nss            string
		commands       string
		kube           string
		config         string
		st             checks.Status
		msg            []string
		remedy         []string
	}{
		{name: "U1 no kubelet user", subuid: "kubelet:65536:7208960\n", kube: "1.33", st: checks.Warn,
			msg: []string{`no "kubelet" user (/etc/passwd)`, "silently uses its default range 65536-4294967295",
				"top block 4294901760-4294967295 ends at 2^32", "1 pod in 65535"},
			remedy: []string{"usernsctl apply --target kubernetes"}},
		{name: "U1 no kubelet user, NSS names sss", nss: "passwd: files sss\ngroup: files sss\n", kube: "1.33", st: checks.Warn,
			msg:    []string{"/etc/nsswitch.conf:1 `passwd: files sss` also names sss", "`getent passwd kubelet` tells"},
			remedy: []string{"run `getent passwd kubelet`"}},
		{name: "U1 kubelet user from sss", nss: "passwd: files sss\ngroup: files sss\n", kube: "1.33", subuid: "kubelet:65536:7208960\n",
			commands: `{"getent passwd kubelet": "kubelet:*:990:990::/var/lib/kubelet:/sbin/nologin\n", "getsubids kubelet": "` + strings.TrimSuffix(docs, "\n") + `\n", "getsubids -g kubelet": "` + strings.TrimSuffix(docs, "\n") + `\n"}`,
			st:       checks.Pass, msg: []string{"`getent passwd kubelet` (/etc/nsswitch.conf:1 `passwd: files sss`)", "one range 65536:7208960"}},
		{name: "U1 kubelet user from a systemd userdb record", nss: "passwd: files systemd\ngroup: files systemd\n", kube: "1.33", subuid: "kubelet:65536:7208960\n",
			commands: getsubids(docs, docs), st: checks.Pass, msg: []string{"/etc/userdb/kubelet.user (nss-systemd)", "one range 65536:7208960"}},
		{name: "U1 getent says no", nss: "passwd: files sss\ngroup: files sss\n", kube: "1.33",
			commands: `{"getent passwd kubelet": {"stdout": "", "exit": 2}}`, st: checks.Warn,
			msg: []string{`no "kubelet" user (/etc/passwd and ` + "`getent passwd kubelet`"}},
		{name: "U3 no getsubids, gate off (1.32)", pw: kubeletPW, subuid: "kubelet:100000:65536\n", kube: "1.32", st: checks.Warn,
			msg: []string{"ignored until the gate is on (UserNamespacesSupport is off by default in Kubernetes 1.32.0)", "once it is on: getsubids is not found",
				"would be refused too", "kubelet user assigned ID 100000 is not a multiple of 65536"},
			remedy: []string{"apt-get install uidmap", "before turning UserNamespacesSupport on"}},
		{name: "U3 no getsubids, gate on in 1.32", pw: kubeletPW, subuid: "kubelet:65536:7208960\n", kube: "1.32",
			config: "featureGates:\n  UserNamespacesSupport: true\n", st: checks.Fail,
			msg: []string{`exec: "getsubids": executable file not found in $PATH`}},
		{name: "U3 no getsubids: the kubelet does not start", pw: kubeletPW, subuid: "kubelet:65536:7208960\n", kube: "1.33", st: checks.Fail,
			msg:    []string{"getsubids is not found (not installed; PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin, systemd's default)", `failed to create kubelet: create user namespace manager: kubelet mappings: exec: "getsubids": executable file not found in $PATH`},
			remedy: []string{"apt-get install uidmap", "remove the kubelet user"}},
		{name: "docs example", pw: kubeletPW, subuid: "kubelet:65536:7208960\n", commands: getsubids(docs, docs), st: checks.Pass,
			msg: []string{`one range 65536:7208960`, "110 pods of 65536 ids", "maxPods 110", "ending at or below 4294901760"}},
		{name: "gate off, range fine", pw: kubeletPW, subuid: "kubelet:65536:7208960\n", commands: getsubids(docs, docs), kube: "1.31", st: checks.Pass,
			msg: []string{"ignored until the gate is on", "once it is on: getsubids gives"}},
		{name: "U4 no ranges: the kubelet does not start", pw: kubeletPW, commands: getsubids("none", "none"), st: checks.Fail,
			msg: []string{"`getsubids kubelet` exits 1", `kubelet mappings: error retrieving additional uids for user "kubelet": exit status 1`}},
		{name: "U5 no gid range", pw: kubeletPW, subuid: "kubelet:65536:7208960\n", subgid: "\n", commands: getsubids(docs, "none"), st: checks.Fail,
			msg: []string{`error retrieving additional gids for user "kubelet"`}},
		{name: "field case 21", pw: kubeletPW, subuid: "kubelet:100000:65536\n", commands: getsubids("0: kubelet 100000 65536\n", "0: kubelet 100000 65536\n"), st: checks.Fail,
			msg:    []string{"kubelet user assigned ID 100000 is not a multiple of 65536", "kubelet user assigned IDs are not enough to support 110 pods"},
			remedy: []string{"usernsctl apply --target kubernetes", "kubelet:196608:7208960"}},
		{name: "U6 mismatch", pw: kubeletPW, subuid: "kubelet:65536:7208960\n", subgid: "kubelet:131072:7208960\n", commands: getsubids(docs, "0: kubelet 131072 7208960\n"), st: checks.Fail,
			msg: []string{`mismatched subuids and subgids for user "kubelet"`}},
		{name: "U6 before U7: two lines on one side", pw: kubeletPW, subuid: "kubelet:65536:7208960\nkubelet:8000000:65536\n", subgid: "kubelet:65536:7208960\n",
			commands: getsubids(docs+"1: kubelet 8000000 65536\n", docs), st: checks.Fail,
			msg: []string{`mismatched subuids and subgids for user "kubelet"`}},
		{name: "U7 two lines", pw: kubeletPW, subuid: "kubelet:65536:7208960\nkubelet:8000000:65536\n",
			commands: getsubids(docs+"1: kubelet 8000000 65536\n", docs+"1: kubelet 8000000 65536\n"), st: checks.Fail,
			msg: []string{"it must contain only one line"}},
		{name: "U8 a plugin prints nothing", pw: kubeletPW, nss: sss, commands: getsubids("", ""), st: checks.Fail,
			msg: []string{"getsubids printed nothing and exited 0", `kubelet mappings: invalid line ""`}},
		{name: "U8 garbage output", pw: kubeletPW, nss: sss, commands: getsubids("hello\n", "hello\n"), st: checks.Fail,
			msg: []string{`invalid line "hello\n"`}},
		{name: "U9 past 32 bits", pw: kubeletPW, nss: sss, commands: getsubids("0: kubelet 4294967296 65536\n", "0: kubelet 4294967296 65536\n"), st: checks.Fail,
			msg: []string{`error parsing line "0: kubelet 4294967296 65536\n": strconv.ParseUint: parsing "4294967296": value out of range`}},
		{name: "R7 ends at 2^32", pw: kubeletPW, subuid: "kubelet:4287758336:7208960\n", commands: getsubids("0: kubelet 4287758336 7208960\n", "0: kubelet 4287758336 7208960\n"), st: checks.Fail,
			msg: []string{"the top block 4294901760-4294967295 ends at 4294967296", "the kernel refuses", "1 in 110"}},
		{name: "R6 past 2^32", pw: kubeletPW, subuid: "kubelet:4287823872:7208960\n", nss: sss, commands: getsubids("0: kubelet 4287823872 7208960\n", "0: kubelet 4287823872 7208960\n"), st: checks.Fail,
			msg: []string{"passes 2^32", "wrap to host id 0"}},
		{name: "R4 1.35 default range, idsPerPod not a power of two", kube: "1.35", config: "userNamespaces:\n  idsPerPod: 196608\n", st: checks.Fail,
			msg:    []string{"kubelet user assigned IDs length 4294770688 is not a multiple of 196608"},
			remedy: []string{"a power of two of at most 33554432 ids"}},
		{name: "R5 1.35 default range, idsPerPod too big for maxPods", kube: "1.35", config: "userNamespaces:\n  idsPerPod: 67108864\n", st: checks.Fail,
			msg: []string{"kubelet user assigned IDs are not enough to support 110 pods"}},
		{name: "1.35 default range, idsPerPod 2^25", kube: "1.35", config: "userNamespaces:\n  idsPerPod: 33554432\n", st: checks.Warn,
			msg: []string{"default range 33554432-4294967295", "1 pod in 127"}},
		{name: "C4 1.31 ignores idsPerPod", kube: "1.31", config: "featureGates:\n  UserNamespacesSupport: true\nuserNamespaces:\n  idsPerPod: 196608\n", st: checks.Warn,
			msg: []string{"default range 65536-4294967295", "idsPerPod 196608 (/var/lib/kubelet/config.yaml line 6) is ignored before Kubernetes 1.35"}},
		{name: "R5 gate off still checks the default (1.32)", kube: "1.32", config: "maxPods: 70000\n", st: checks.Fail,
			msg: []string{"kubelet user assigned IDs are not enough to support 70000 pods"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gid := c.subgid
			if gid == "" {
				gid = c.subuid
			}
			files := with(tree{"/etc/subuid": c.subuid + "alice:100000:65536\n", "/etc/subgid": strings.TrimPrefix(gid, "\n") + "alice:100000:65536\n"})
			files["/etc/passwd"] += c.pw
			if c.nss != "" {
				files["/etc/nsswitch.conf"] = c.nss
			}
			if strings.Contains(c.name, "userdb") {
				files["/etc/userdb/kubelet.user"] = `{"userName": "kubelet", "uid": 61000, "gid": 61000}`
			}
			if c.config != "" {
				files["/var/lib/kubelet/config.yaml"] = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" + c.config
			}
			env := checkstest.Kube(t, checkstest.Env(t, checks.Kubernetes, files, c.commands, nil), c.kube)
			expect(t, c.name, run1(t, "subid.kubelet", env), c.st, c.msg, c.remedy...)
		})
	}
}

// A tree that apply --root wrote after the snapshot: the files now give
// the kubelet a range, the recorded getsubids still says none; getsubids
// with `subid: files` would print the files' range.
func TestKubeletJudgesFilesWrittenSinceTheSnapshot(t *testing.T) {
	files := with(tree{"/etc/subuid": "kubelet:65536:7208960\n", "/etc/subgid": "kubelet:65536:7208960\n"})
	files["/etc/passwd"] += kubeletPW
	env := checkstest.Kube(t, checkstest.Env(t, checks.Kubernetes, files, getsubids("none", "none"), nil), "1.33")
	r := run1(t, "subid.kubelet", env)
	expect(t, "derived", r, checks.Pass, []string{"one range 65536:7208960", "no longer match /etc/subuid and /etc/subgid"})
}

func TestNSSwitch(t *testing.T) {
	sss := "passwd: files sss\ngroup: files sss\nsubid:      sss\n"
	cases := []struct {
		name     string
		target   checks.Target
		ns       string
		commands string
		st       checks.Status
		msg      []string
	}{
		{"no file", checks.Docker, "", "", checks.Pass, []string{"no /etc/nsswitch.conf"}},
		{"Debian default: no subid line", checks.Docker, "passwd: files\ngroup: files\n", "", checks.Pass, []string{"has no `subid:` line"}},
		{"files", checks.Kubernetes, "subid: files\n", "", checks.Pass, []string{"/etc/nsswitch.conf:1 `subid: files`"}},
		{"sss, kubernetes (field case 11)", checks.Kubernetes, sss, getsubids("0: kubelet 65536 7208960\n", "0: kubelet 65536 7208960\n"), checks.Warn,
			[]string{"/etc/nsswitch.conf:3 `subid: sss`", "libsubid_sss.so", "`getsubids kubelet` answers \"0: kubelet 65536 7208960\""}},
		{"sss, docker", checks.Docker, sss, "", checks.Warn, []string{"dockerd ignores this line"}},
		{"CRLF", checks.Docker, "subid: sss\r\n", "", checks.Warn, []string{"control character"}},
	}
	for _, c := range cases {
		files := with(nil)
		if c.ns != "" {
			files["/etc/nsswitch.conf"] = c.ns
		}
		env := checkstest.Env(t, c.target, files, c.commands, nil)
		expect(t, c.name, run1(t, "subid.nsswitch", env), c.st, c.msg)
	}
	env := checkstest.Env(t, checks.Docker, with(tree{"/etc/nsswitch.conf": "<dir>"}), "", nil)
	expect(t, "directory", run1(t, "subid.nsswitch", env), checks.Warn, []string{"is a directory"})
}

func TestIDsAndTargets(t *testing.T) {
	want := map[string][]checks.Target{
		"subid.files": nil, "subid.overlap": nil, "subid.account_uids": nil, "subid.nsswitch": nil,
		"subid.remap_user": {checks.Docker}, "subid.kubelet": {checks.Kubernetes},
	}
	got := Checkers()
	if len(got) != len(want) {
		t.Fatalf("%d checks, want %d", len(got), len(want))
	}
	for _, c := range got {
		i := c.Info()
		w, ok := want[i.ID]
		if !ok || len(w) != len(i.Targets) || (len(w) == 1 && w[0] != i.Targets[0]) || i.Area() != "subid" || i.Doc == "" || i.Title == "" {
			t.Errorf("%s: targets %v", i.ID, i.Targets)
		}
	}
}

// TestHostileHosts runs every check, for every target, on hosts whose
// files are missing, binary, huge or directories: each must give a
// finding, never an internal error.
func TestHostileHosts(t *testing.T) {
	junk := "\x7fELF\x02\x01\x01\x00\xff\xfe\x00:\x00\n\xc3\x28:1:2\n"
	long := strings.Repeat("k", 10<<20)
	paths := []string{"/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid", "/etc/login.defs", "/etc/nsswitch.conf"}
	hosts := map[string]tree{"empty": {}}
	for name, content := range map[string]string{"binary": junk, "long": long, "dir": "<dir>"} {
		h := tree{}
		for _, p := range paths {
			h[p] = content
		}
		hosts[name] = h
	}
	cmds := `{"getsubids kubelet": "\u0000\u00ff", "getsubids -g kubelet": {"stdout": "", "stderr": "boom", "exit": 2}}`
	for name, files := range hosts {
		for _, target := range checks.AllTargets {
			env := checkstest.Env(t, target, files, cmds, nil)
			var list []checks.Checker
			for _, c := range Checkers() {
				if c.Info().AppliesTo(target) {
					list = append(list, c)
				}
			}
			rep := checks.Run(context.Background(), env, list, checks.Options{}, "test")
			for _, o := range rep.Checks {
				if strings.Contains(o.Message, "internal error") || o.Message == "" {
					t.Errorf("%s host, %s: %s %s: %q", name, target, o.ID, o.Status, o.Message)
				}
				if len(o.Message) > 4000 {
					t.Errorf("%s host, %s: %s message is %d bytes", name, target, o.ID, len(o.Message))
				}
			}
		}
	}
}

func TestKubeletUsesKubeletConfig(t *testing.T) {
	docs := "0: kubelet 65536 7208960\n"
	files := with(tree{
		"/var/lib/kubelet/config.yaml": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 250\n",
		"/etc/subuid":                  "kubelet:65536:7208960\n", "/etc/subgid": "kubelet:65536:7208960\n",
	})
	files["/etc/passwd"] += kubeletPW
	env := checkstest.Env(t, checks.Kubernetes, files, getsubids(docs, docs), nil)
	expect(t, "maxPods 250", run1(t, "subid.kubelet", env), checks.Fail,
		[]string{"maxPods 250 from /var/lib/kubelet/config.yaml", "kubelet user assigned IDs are not enough to support 250 pods"},
		"count ≥ 16384000")
}

// A file with very many bad lines still gets a short, exact remedy:
// consecutive lines collapse into sed ranges, and past 20 runs the rest is
// left for the next check.
func TestRemedyStaysBounded(t *testing.T) {
	var lines []int
	for i := 1; i <= 100000; i++ {
		lines = append(lines, i)
	}
	if got := sedDelete(lines); got != "1,100000d" {
		t.Errorf("one run: %q", got)
	}
	var odd []int
	for i := 1; i <= 100000; i += 2 {
		odd = append(odd, i)
	}
	got := sedDelete(odd)
	if n := strings.Count(got, "d"); n != maxRuns || len(got) > 200 {
		t.Errorf("capped script has %d deletions, %d bytes: %q", n, len(got), got)
	}
	if more := sedMore(odd); !strings.Contains(more, "20 of 50000") {
		t.Errorf("sedMore = %q", more)
	}
	if j := joinInts(odd, ", "); !strings.HasSuffix(j, "and 49980 more") {
		t.Errorf("joinInts = %q", j)
	}
	if j := joinInts([]int{3, 4, 5, 9}, ", "); j != "3-5, 9" {
		t.Errorf("joinInts = %q", j)
	}
}

// executable makes host paths of env's tree executable, as the programs
// dockerd runs are.
func executable(t *testing.T, env *checks.Env, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chmod(env.Host.Path(p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// R10: for "default" without dockremap, dockerd runs adduser (only when it
// resolves to a file named adduser) or useradd, then usermod -v/-w.
func TestRemapUserCreationTools(t *testing.T) {
	files := func(extra tree) tree {
		tr := tree{"/etc/subuid": "alice:100000:65536\n", "/etc/subgid": "alice:100000:65536\n"}
		for k, v := range extra {
			tr[k] = v
		}
		return tr
	}
	for _, tc := range []struct {
		name  string
		files tree
		exe   []string
		cmds  string
		st    checks.Status
		msg   []string
	}{
		{"useradd without usermod", files(tree{"/usr/sbin/useradd": ""}), []string{"/usr/sbin/useradd"}, docker28, checks.Fail,
			[]string{"then add its subuid range with `usermod`, which is not on dockerd's PATH",
				"`Error during \"dockremap\" user creation: couldn't create subordinate ID ranges: unable to add subuid range to user: \"dockremap\"; output: , err: exec: \"usermod\": executable file not found in $PATH`",
				"dockremap then exists without ranges"}},
		{"busybox adduser only", files(tree{"/bin/busybox": "", "/bin/adduser": "-> busybox", "/usr/sbin/": ""}), []string{"/bin/busybox"}, docker20, checks.Fail,
			[]string{"/bin/adduser resolves to /bin/busybox, which dockerd does not take for adduser",
				"`Error during \"dockremap\" user creation: Error adding user \"dockremap\": cannot add user; no useradd/adduser binary found`"}},
		{"adduser and usermod", files(tree{"/usr/sbin/adduser": "", "/usr/sbin/usermod": ""}), []string{"/usr/sbin/adduser", "/usr/sbin/usermod"}, docker28, checks.Warn,
			[]string{"dockerd would create dockremap at start and allocate its ranges itself"}},
		// usermod is needed only for a file without a line owned by the
		// name dockremap.
		{"ranges by name already, no usermod", tree{"/etc/subuid": "dockremap:300000:65536\n", "/etc/subgid": "dockremap:300000:65536\n", "/usr/sbin/useradd": ""},
			[]string{"/usr/sbin/useradd"}, docker28, checks.Pass, []string{"container root is host uid 300000"}},
		{"no PATH directory in the snapshot", files(nil), nil, docker28, checks.Warn,
			[]string{"whether adduser/useradd and usermod are there cannot be told"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := remapEnv(t, "", "", tc.files, tc.cmds)
			executable(t, env, tc.exe...)
			r := judge(t, env, "default", "")
			expect(t, tc.name, r, tc.st, tc.msg)
		})
	}
}

// R8: dockerd asks getent when the account is not in the files; where
// nsswitch.conf names only the files there is nothing more to ask.
func TestRemapUserNSS(t *testing.T) {
	nss := tree{"/etc/nsswitch.conf": "passwd: files sss\ngroup: files sss\nsubid: files\n",
		"/etc/subuid": "ldapmap:400000:65536\n", "/etc/subgid": "ldapmap:400000:65536\n"}
	found := `{"getent passwd ldapmap": "ldapmap:*:1800:1800:LDAP remap:/:/bin/false\n", "getent group ldapmap": "ldapmap:*:1800:\n"}`
	none := `{"getent passwd ldapmap": {"stdout": "", "exit": 2}}`
	for _, tc := range []struct {
		name, cmds string
		st         checks.Status
		msg        []string
	}{
		{"getent finds it", found, checks.Pass, []string{"remap user ldapmap", "container root is host uid 400000"}},
		{"getent finds nothing", none, checks.Fail, []string{"is not in /etc/passwd"}},
		{"getent not recorded", "", checks.Warn, []string{"unless `getent passwd ldapmap` knows it", "/etc/nsswitch.conf line 1 (passwd: files sss)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := remapEnv(t, "", "", nss, tc.cmds)
			expect(t, tc.name, judge(t, env, "ldapmap", ""), tc.st, tc.msg)
		})
	}
	files := tree{"/etc/nsswitch.conf": "passwd: files\ngroup: files\n"}
	env := remapEnv(t, "", "", files, found)
	expect(t, "files only", judge(t, env, "ldapmap", ""), checks.Fail, []string{"is not in /etc/passwd"})
}
