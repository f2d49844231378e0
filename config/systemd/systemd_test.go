package systemd

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/hosttree"
)

// Docker CE's unit (moby contrib/init/systemd/docker.service).
const dockerCE = `[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
After=network-online.target nss-lookup.target docker.socket firewalld.service containerd.service time-set.target
Wants=network-online.target containerd.service
Requires=docker.socket

[Service]
Type=notify
# the default is not to use systemd for cgroups because the delegate issues still
# exists and systemd currently does not support the cgroup feature set required
# for containers run by docker
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutStartSec=0
RestartSec=2
Restart=always

[Install]
WantedBy=multi-user.target
`

// Debian 12's docker.io unit: it reads /etc/default/docker.
const debianDockerIO = `[Unit]
Description=Docker Application Container Engine
After=network-online.target docker.socket firewalld.service containerd.service
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
`

// RHEL 7's docker 1.13 unit (extras): flags continued over lines, and
// $OPTIONS from /etc/sysconfig/docker.
const rhel7 = `[Unit]
Description=Docker Application Container Engine
After=network.target rhel-push-plugin.socket registries.service
Wants=docker-storage-setup.service
Requires=docker-cleanup.timer

[Service]
Type=notify
NotifyAccess=main
EnvironmentFile=-/run/containers/registries.conf
EnvironmentFile=-/etc/sysconfig/docker
EnvironmentFile=-/etc/sysconfig/docker-storage
EnvironmentFile=-/etc/sysconfig/docker-network
Environment=GOTRACEBACK=crash
Environment=DOCKER_HTTP_HOST_COMPAT=1
Environment=PATH=/usr/libexec/docker:/usr/bin:/usr/sbin
ExecStart=/usr/bin/dockerd-current \
          --add-runtime docker-runc=/usr/libexec/docker/docker-runc-current \
          --default-runtime=docker-runc \
          --exec-opt native.cgroupdriver=systemd \
          --userland-proxy-path=/usr/libexec/docker/docker-proxy-current \
          --init-path=/usr/libexec/docker/docker-init-current \
          --seccomp-profile=/etc/docker/seccomp.json \
          $OPTIONS \
          $DOCKER_STORAGE_OPTIONS \
          $DOCKER_NETWORK_OPTIONS \
          $ADD_REGISTRY \
          $BLOCK_REGISTRY \
          $INSECURE_REGISTRY \
	  $REGISTRIES
ExecReload=/bin/kill -s HUP $MAINPID
LimitNOFILE=1048576
TimeoutStartSec=0
Restart=on-abnormal
KillMode=process

[Install]
WantedBy=multi-user.target
`

const rhel7Sysconfig = `# /etc/sysconfig/docker

# Modify these options if you want to change the way the docker daemon runs
OPTIONS='--selinux-enabled --log-driver=journald --signature-verification=false'
if [ -z "${DOCKER_CERT_PATH}" ]; then
    DOCKER_CERT_PATH=/etc/docker
fi

# Do not add registries in this file anymore. Use /etc/containers/registries.conf
# instead. For more information reference the registries.conf(5) man page.

# Location used for temporary files, such as those created by
# docker load and build operations. Default is /var/lib/docker/tmp
# Can be overriden by setting the following environment variable.
# DOCKER_TMPDIR=/var/tmp
`

const rhel7Storage = `DOCKER_STORAGE_OPTIONS="--storage-driver overlay2 "
`

// The drop-in the Docker docs tell operators to write, with the reset line.
const overrideDropIn = `[Service]
ExecStart=
# keep the socket activation
ExecStart=/usr/bin/dockerd -H fd:// \
    --containerd=/run/containerd/containerd.sock \
    # a comment inside a continuation is skipped by systemd
    --userns-remap=default \
    --data-root /srv/docker
`

func texts(ws []Word) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Text
	}
	return out
}

func execStart(t *testing.T, h *host.Host) (*Unit, []Command) {
	t.Helper()
	u, err := Load(h, "docker.service")
	if err != nil {
		t.Fatal(err)
	}
	env, _, _ := u.Environment(h)
	var cmds []Command
	for _, e := range u.All("Service", "ExecStart") {
		c, err := Commands(e, env)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c...)
	}
	return u, cmds
}

func TestDockerCE(t *testing.T) {
	h := hosttree.Host(t, map[string]string{"lib/systemd/system/docker.service": dockerCE})
	u, cmds := execStart(t, h)
	if u.Path != "/lib/systemd/system/docker.service" || len(u.DropIns) != 0 {
		t.Fatalf("Path=%s DropIns=%v", u.Path, u.DropIns)
	}
	if len(cmds) != 1 {
		t.Fatalf("%d commands", len(cmds))
	}
	want := []string{"/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"}
	if got := texts(cmds[0].Argv); !reflect.DeepEqual(got, want) {
		t.Fatalf("argv = %q, want %q", got, want)
	}
	if w := cmds[0].Argv[3]; w.Line != 13 || w.File != "/lib/systemd/system/docker.service" {
		t.Errorf("--containerd at %s, want line 13", w.Where())
	}
	if len(u.Problems()) != 0 {
		t.Errorf("problems: %v", u.Problems())
	}
}

func TestDropInResetAndPriority(t *testing.T) {
	h := hosttree.Host(t, map[string]string{
		"lib/systemd/system/docker.service":                      dockerCE,
		"usr/lib/systemd/system/docker.service":                  "[Service]\nExecStart=/wrong\n",
		"etc/systemd/system/docker.service.d/override.conf":      overrideDropIn,
		"usr/lib/systemd/system/docker.service.d/override.conf":  "[Service]\nExecStart=/hidden/by/etc\n",
		"run/systemd/system/docker.service.d/50-proxy.conf":      "[Service]\nEnvironment=\"HTTPS_PROXY=http://proxy:3128\" NO_PROXY=localhost\n",
		"lib/systemd/system/docker.service.d/10-limits.conf":     "[Service]\nLimitNOFILE=1024\n",
		"etc/systemd/system/docker.service.d/ignored.conf.saved": "[Service]\nExecStart=/not/a/conf\n",
	})
	u, cmds := execStart(t, h)
	// /usr/lib comes before /lib: the first unit file found wins.
	if u.Path != "/usr/lib/systemd/system/docker.service" {
		t.Errorf("Path = %s", u.Path)
	}
	wantDrop := []string{
		"/lib/systemd/system/docker.service.d/10-limits.conf",
		"/run/systemd/system/docker.service.d/50-proxy.conf",
		"/etc/systemd/system/docker.service.d/override.conf",
	}
	if !reflect.DeepEqual(u.DropIns, wantDrop) {
		t.Errorf("DropIns = %q, want %q", u.DropIns, wantDrop)
	}
	if len(cmds) != 1 {
		t.Fatalf("ExecStart= reset not applied: %d commands", len(cmds))
	}
	want := []string{"/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock", "--userns-remap=default", "--data-root", "/srv/docker"}
	if got := texts(cmds[0].Argv); !reflect.DeepEqual(got, want) {
		t.Fatalf("argv = %q, want %q", got, want)
	}
	// Each word keeps its physical line, across the continuation and the
	// skipped comment line.
	lines := map[string]int{"-H": 4, "--containerd=/run/containerd/containerd.sock": 5, "--userns-remap=default": 7, "/srv/docker": 8}
	for _, w := range cmds[0].Argv {
		if l, ok := lines[w.Text]; ok && w.Line != l {
			t.Errorf("%s at line %d, want %d", w.Text, w.Line, l)
		}
	}
	env, _, probs := u.Environment(h)
	if env["HTTPS_PROXY"].Value != "http://proxy:3128" || env["NO_PROXY"].Value != "localhost" || len(probs) != 0 {
		t.Errorf("env = %v, problems %v", env, probs)
	}
}

func TestDropInWithoutReset(t *testing.T) {
	h := hosttree.Host(t, map[string]string{
		"lib/systemd/system/docker.service":                 dockerCE,
		"etc/systemd/system/docker.service.d/override.conf": "[Service]\nExecStart=/usr/bin/dockerd --userns-remap=default\n",
	})
	_, cmds := execStart(t, h)
	// Two ExecStart= for a Type=notify service: systemd refuses to start
	// it; the caller must see both.
	if len(cmds) != 2 {
		t.Fatalf("%d commands, want 2", len(cmds))
	}
}

func TestRHEL7SysconfigExpansion(t *testing.T) {
	h := hosttree.Host(t, map[string]string{
		"usr/lib/systemd/system/docker.service": rhel7,
		"etc/sysconfig/docker":                  rhel7Sysconfig,
		"etc/sysconfig/docker-storage":          rhel7Storage,
	})
	u, cmds := execStart(t, h)
	env, refs, probs := u.Environment(h)
	if len(refs) != 4 || !reflect.DeepEqual(refs[1].Files, []string{"/etc/sysconfig/docker"}) || len(refs[0].Files) != 0 {
		t.Errorf("refs = %+v", refs)
	}
	// The shell lines of sysconfig are skipped and reported, as systemd
	// does; DOCKER_CERT_PATH inside the if is still an assignment.
	if len(probs) != 2 || probs[0].Line != 5 || probs[1].Line != 7 {
		t.Errorf("problems = %v", probs)
	}
	if env["DOCKER_CERT_PATH"].Value != "/etc/docker" {
		t.Errorf("DOCKER_CERT_PATH = %+v", env["DOCKER_CERT_PATH"])
	}
	argv := cmds[0].Argv
	want := []string{"/usr/bin/dockerd-current",
		"--add-runtime", "docker-runc=/usr/libexec/docker/docker-runc-current",
		"--default-runtime=docker-runc",
		"--exec-opt", "native.cgroupdriver=systemd",
		"--userland-proxy-path=/usr/libexec/docker/docker-proxy-current",
		"--init-path=/usr/libexec/docker/docker-init-current",
		"--seccomp-profile=/etc/docker/seccomp.json",
		"--selinux-enabled", "--log-driver=journald", "--signature-verification=false",
		"--storage-driver", "overlay2"}
	if got := texts(argv); !reflect.DeepEqual(got, want) {
		t.Fatalf("argv =\n%q\nwant\n%q", got, want)
	}
	for _, w := range argv {
		switch w.Text {
		case "--default-runtime=docker-runc":
			if w.Line != 19 || w.Via != "" {
				t.Errorf("%s at %s, want unit line 19", w.Text, w.Where())
			}
		case "--log-driver=journald":
			if w.File != "/etc/sysconfig/docker" || w.Line != 4 || w.Via != "$OPTIONS" {
				t.Errorf("%s at %s, want /etc/sysconfig/docker line 4 via $OPTIONS", w.Text, w.Where())
			}
		case "overlay2":
			if w.File != "/etc/sysconfig/docker-storage" || w.Line != 1 {
				t.Errorf("%s at %s", w.Text, w.Where())
			}
		}
	}
	if got := argv[9].Where(); got != "/etc/sysconfig/docker line 4 (via $OPTIONS)" {
		t.Errorf("Where = %q", got)
	}
}

func TestDebianDefaultFile(t *testing.T) {
	h := hosttree.Host(t, map[string]string{
		"lib/systemd/system/docker.service": debianDockerIO,
		"etc/default/docker":                "# Docker Upstart and SysVinit configuration file\n#DOCKER_OPTS=\"--dns 8.8.8.8\"\nDOCKER_OPTS=\"--userns-remap=default --dns 8.8.8.8\"\n",
	})
	_, cmds := execStart(t, h)
	want := []string{"/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock", "--userns-remap=default", "--dns", "8.8.8.8"}
	if got := texts(cmds[0].Argv); !reflect.DeepEqual(got, want) {
		t.Fatalf("argv = %q, want %q", got, want)
	}
	if w := cmds[0].Argv[4]; w.File != "/etc/default/docker" || w.Line != 3 {
		t.Errorf("--userns-remap at %s", w.Where())
	}
	// Without the file, $DOCKER_OPTS expands to nothing.
	h = hosttree.Host(t, map[string]string{"lib/systemd/system/docker.service": debianDockerIO})
	_, cmds = execStart(t, h)
	if len(cmds[0].Argv) != 4 {
		t.Errorf("argv = %q", texts(cmds[0].Argv))
	}
}

func TestLoadNotFoundAndMasked(t *testing.T) {
	h := hosttree.Host(t, map[string]string{"etc/hostname": "x\n"})
	if _, err := Load(h, "docker.service"); err != ErrNotFound {
		t.Fatalf("Load = %v, want ErrNotFound", err)
	}
	h = hosttree.Host(t, map[string]string{"etc/systemd/system/docker.service": "", "lib/systemd/system/docker.service": dockerCE})
	u, err := Load(h, "docker.service")
	if err != nil || !u.Masked || len(u.All("Service", "ExecStart")) != 0 {
		t.Fatalf("masked unit: %+v %v", u, err)
	}
}

func TestLoadDirectoryAsFile(t *testing.T) {
	h := hosttree.Host(t, map[string]string{"/etc/systemd/system/docker.service/": ""})
	_, err := Load(h, "docker.service")
	if err == nil || !strings.Contains(err.Error(), "/etc/systemd/system/docker.service") || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Load with a directory as the unit = %v, want an error naming it", err)
	}
}

func TestParseProblems(t *testing.T) {
	src := "\xEF\xBB\xBFFoo=outside\n[Service]\nNoEquals\n=value\nBad=\xff\xfe\n  ; comment\nKey = spaced value  \nTrailing=a \\\n"
	f, err := Parse(strings.NewReader(src), "x.service")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range f.Problems {
		got = append(got, p.String())
	}
	want := []string{
		"x.service:1: assignment outside of a section, ignored",
		"x.service:3: missing '=', line ignored",
		"x.service:4: missing key name before '=', line ignored",
		"x.service:5: invalid UTF-8, line ignored",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems =\n%q\nwant\n%q", got, want)
	}
	wantE := []Entry{
		{Section: "Service", Key: "Key", Value: "spaced value", File: "x.service", Line: 7},
		// A continuation at the end of the file is parsed as it stands.
		{Section: "Service", Key: "Trailing", Value: "a", File: "x.service", Line: 8},
	}
	for i := range f.Entries {
		f.Entries[i].marks = nil
	}
	if !reflect.DeepEqual(f.Entries, wantE) {
		t.Errorf("entries = %+v, want %+v", f.Entries, wantE)
	}

	f, _ = Parse(strings.NewReader("[Service\nA=b\n"), "x.service")
	if len(f.Problems) != 1 || !f.Problems[0].Fatal {
		t.Errorf("invalid section header: %v", f.Problems)
	}
}

func TestParseRefusesJunk(t *testing.T) {
	for i, tc := range []struct{ desc, src, want string }{
		{"binary", "\x7fELF\x02\x01\x01\x00\x00", "x.service:1: binary data"},
		{"10 MB line", "[Service]\nExecStart=/bin/x " + strings.Repeat("a", 10<<20) + "\n", "x.service:2: line longer than"},
		{"10 MB of continuations", "[Service]\nExecStart=/bin/x \\\n" + strings.Repeat(strings.Repeat("a", 1000)+" \\\n", 10<<10), "continued line longer than"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.src), "x.service")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want %q", tc.desc, err, tc.want)
			}
		})
	}
	if _, _, err := ParseEnvFile(strings.NewReader("A=\x00"), "/etc/sysconfig/docker"); err == nil || !strings.Contains(err.Error(), "/etc/sysconfig/docker:1: binary") {
		t.Errorf("env file binary: %v", err)
	}
}

func TestCommandsQuotingAndPrefixes(t *testing.T) {
	env := Env{
		"OPTS":  {Name: "OPTS", Value: `--label "a b" --debug`, File: "/etc/default/x", Line: 2},
		"EMPTY": {Name: "EMPTY", Value: ""},
		"DIR":   {Name: "DIR", Value: "/srv/docker", File: "/etc/default/x", Line: 3},
	}
	for i, tc := range []struct {
		val  string
		want [][]string
	}{
		{`-/usr/bin/dockerd "--label=a b" '--x=y z' --pct=100%% --tab=a\tb`, [][]string{{"/usr/bin/dockerd", "--label=a b", "--x=y z", "--pct=100%", "--tab=a\tb"}}},
		{`@/usr/bin/dockerd dockerd-alias --debug`, [][]string{{"/usr/bin/dockerd", "--debug"}}},
		{`+!/usr/bin/dockerd $OPTS $EMPTY $UNSET --data-root=${DIR}/x --lit=$DIR --cost=$$5`, [][]string{{"/usr/bin/dockerd", "--label", "a b", "--debug", "--data-root=/srv/docker/x", "--lit=$DIR", "--cost=$5"}}},
		{`/bin/a 1 ; /bin/b 2`, [][]string{{"/bin/a", "1"}, {"/bin/b", "2"}}},
		{`/bin/a "x\"y" \x41\u00e9\101 \q`, [][]string{{"/bin/a", `x"y`, "Aé" + "A", `\q`}}},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			cmds, err := Commands(Entry{Key: "ExecStart", Value: tc.val, File: "u", Line: 1}, env)
			if err != nil {
				t.Errorf("%s: %v", tc.val, err)
				return
			}
			var got [][]string
			for _, c := range cmds {
				got = append(got, texts(c.Argv))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Commands(%s) = %q, want %q", tc.val, got, tc.want)
			}
		})
	}
	if _, err := Commands(Entry{Key: "ExecStart", Value: `/bin/a "open`, File: "u", Line: 3}, nil); err == nil || !strings.Contains(err.Error(), "u line 3") {
		t.Errorf("unterminated quote: %v", err)
	}
}

func TestParseEnvFileForms(t *testing.T) {
	src := "A=plain value  \nB='single $x \\n'\nC=\"dq \\\"x\\\" \\$y \\n\"\nexport D=exported\nE=\"multi\nline\"\nF=cont\\\ninued\n  # comment\n; comment\nG =  spaced\n1BAD=x\n"
	vars, probs, err := ParseEnvFile(strings.NewReader(src), "/etc/default/docker")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	lines := map[string]int{}
	for _, v := range vars {
		got[v.Name], lines[v.Name] = v.Value, v.Line
	}
	want := map[string]string{"A": "plain value", "B": `single $x \n`, "C": `dq "x" $y \n`, "D": "exported", "E": "multi\nline", "F": "continued", "G": "spaced"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vars = %q, want %q", got, want)
	}
	if lines["E"] != 5 || lines["F"] != 7 || lines["G"] != 11 {
		t.Errorf("lines = %v", lines)
	}
	if len(probs) != 1 || probs[0].Line != 12 {
		t.Errorf("problems = %v", probs)
	}
}

func TestParseFlags(t *testing.T) {
	bools := map[string]bool{"debug": true, "iptables": true}
	syn := FlagSyntax{
		IsBool: func(n string) bool { return bools[n] },
		Long:   func(s string) string { return map[string]string{"H": "host", "D": "debug", "G": "group"}[s] },
	}
	words := func(s ...string) []Word {
		out := []Word{{Text: "dockerd"}}
		for i, x := range s {
			out = append(out, Word{Text: x, Line: i + 1})
		}
		return out
	}
	got := ParseFlags(words("-H", "fd://", "--config-file", "/etc/docker/alt.json", "--debug", "--iptables=false",
		"-DG", "docker", "-Hunix:///x.sock", "-H=tcp://0:2375", "--userns-remap=default", "--data-root", "--exec-opt=a=b", "--", "--after"), syn)
	type f struct {
		Name, Value string
		Has         bool
		Line        int
	}
	var simple []f
	for _, x := range got {
		simple = append(simple, f{x.Name, x.Value, x.HasValue, x.Word.Line})
	}
	want := []f{
		{"host", "fd://", true, 1},
		{"config-file", "/etc/docker/alt.json", true, 3},
		{"debug", "", false, 5},
		{"iptables", "false", true, 6},
		{"debug", "", false, 7},
		{"group", "docker", true, 7},
		{"host", "unix:///x.sock", true, 9},
		{"host", "tcp://0:2375", true, 10},
		{"userns-remap", "default", true, 11},
		// A value-taking flag followed by another flag has no value.
		{"data-root", "", false, 12},
		{"exec-opt", "a=b", true, 13},
	}
	if !reflect.DeepEqual(simple, want) {
		t.Errorf("flags =\n%+v\nwant\n%+v", simple, want)
	}
	if got[1].Text != "--config-file /etc/docker/alt.json" {
		t.Errorf("Text = %q", got[1].Text)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{dockerCE, rhel7, overrideDropIn, "[S]\nA=\\", "[", "A=\"\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		file, err := Parse(strings.NewReader(s), "f")
		if err != nil {
			return
		}
		for _, e := range file.Entries {
			cmds, _ := Commands(e, Env{"A": {Value: s}})
			for _, c := range cmds {
				ParseFlags(c.Argv, FlagSyntax{})
			}
		}
		_, _, _ = ParseEnvFile(strings.NewReader(s), "f")
	})
}
