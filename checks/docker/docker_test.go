package docker

import (
	"sort"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/checks/facts"
)

const passwd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
toor:x:0:0:root alias:/root:/bin/sh
mapuser:x:1500:1500::/nonexistent:/usr/sbin/nologin
lonely:x:1700:1700::/nonexistent:/usr/sbin/nologin
`

const group = `root:x:0:
daemon:x:1:
docker:x:998:
mapuser:x:1500:
mapgroup:x:1600:
`

// Docker CE's unit (moby contrib/init/systemd/docker.service), trimmed.
const ceUnit = `[Unit]
Description=Docker Application Container Engine
Requires=docker.socket

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
ExecReload=/bin/kill -s HUP $MAINPID
Restart=always

[Install]
WantedBy=multi-user.target
`

// Debian 12's docker.io unit: reads /etc/default/docker.
const debianUnit = `[Unit]
Description=Docker Application Container Engine

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID

[Install]
WantedBy=multi-user.target
`

// RHEL 7's docker 1.13 unit, trimmed.
const rhelUnit = `[Service]
Type=notify
EnvironmentFile=-/etc/sysconfig/docker
EnvironmentFile=-/etc/sysconfig/docker-storage
ExecStart=/usr/bin/dockerd-current \
          --add-runtime docker-runc=/usr/libexec/docker/docker-runc-current \
          --default-runtime=docker-runc \
          --exec-opt native.cgroupdriver=systemd \
          $OPTIONS \
          $DOCKER_STORAGE_OPTIONS
`

const rhelSysconfig = `# /etc/sysconfig/docker

# Modify these options if you want to change the way the docker daemon runs
OPTIONS='--selinux-enabled --log-driver=journald --signature-verification=false'
if [ -z "${DOCKER_CERT_PATH}" ]; then
    DOCKER_CERT_PATH=/etc/docker
fi
`

type files map[string]string

// Recorded `dockerd --version` outputs.
const (
	docker20 = `{"dockerd --version": "Docker version 20.10.24+dfsg1, build 5d6db84\n"}`
	docker23 = `{"dockerd --version": "Docker version 23.0.6, build ef23cbc\n"}`
	docker26 = `{"dockerd --version": "Docker version 26.1.3, build 26.1.3-0ubuntu1~24.04.1\n"}`
	docker27 = `{"dockerd --version": "Docker version 27.3.1, build ce12230\n"}`
	docker28 = `{"dockerd --version": "Docker version 28.5.2, build 3ef3c07\n"}`
	docker29 = `{"dockerd --version": "Docker version 29.1.0, build 1\n"}`
)

func newEnv(t *testing.T, fs files, commands string) *checks.Env {
	t.Helper()
	return checkstest.Env(t, checks.Docker, fs, commands, nil)
}

// base is a host with accounts and nothing Docker-specific.
func base(extra files) files {
	fs := files{"etc/passwd": passwd, "etc/group": group}
	for k, v := range extra {
		fs[k] = v
	}
	return fs
}

func check(t *testing.T, env *checks.Env, id string) checks.Result {
	t.Helper()
	return checkstest.Run(t, Checkers(), id, env)
}

func TestCheckersContract(t *testing.T) {
	var ids []string
	for _, c := range Checkers() {
		i := c.Info()
		ids = append(ids, i.ID)
		if i.Area() != "docker" || i.Title == "" || i.Doc == "" || !i.AppliesTo(checks.Docker) || i.AppliesTo(checks.Kubernetes) {
			t.Errorf("bad info %+v", i)
		}
	}
	sort.Strings(ids)
	wantIDs := "docker.containerd_snapshotter docker.daemon_json docker.data_root docker.default_runtime docker.flag_conflicts docker.host_namespaces docker.remapped_root_access docker.userns_remap"
	if strings.Join(ids, " ") != wantIDs {
		t.Fatalf("IDs = %v", ids)
	}
}

func TestDaemonJSON(t *testing.T) {
	t.Run("missing is fine", func(t *testing.T) {
		r := check(t, newEnv(t, base(nil), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "/etc/docker/daemon.json does not exist (default)", "usernsctl apply will create it")
	})
	t.Run("valid", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "{\n  \"log-driver\": \"journald\",\n  \"iptables\": false\n}\n"}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "valid JSON with 2 keys: log-driver, iptables")
		r = check(t, newEnv(t, base(files{"etc/docker/daemon.json": "{\"iptables\": false}\n"}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "valid JSON with 1 key: iptables")
	})
	t.Run("empty", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "\n"}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "is empty: dockerd reads it as {}")
	})
	t.Run("trailing comma", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "{\n  \"userns-remap\": \"default\",\n}\n"}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "/etc/docker/daemon.json:3:1: invalid character '}' looking for beginning of object key string",
			"edit /etc/docker/daemon.json at line 3, column 1 (trailing comma", "delete the ',' at line 2 column 28", "dockerd --validate --config-file /etc/docker/daemon.json")
	})
	t.Run("comment", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "{\n  # remap\n  \"userns-remap\": \"default\"\n}\n"}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "daemon.json:2:3:", "JSON has no comments")
	})
	t.Run("two objects appended", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "{\"debug\": true}\n{\"userns-remap\": \"default\"}\n"}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "daemon.json:2:1:", "appended with >>")
	})
	t.Run("binary", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "\x7fELF\x02\x01\x01\x00\xff"}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "daemon.json:1:9: invalid UTF-8", "binary file")
	})
	t.Run("directory", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json/": ""}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "is a directory", "mv /etc/docker/daemon.json /etc/docker/daemon.json.dir")
	})
	t.Run("duplicates", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "{\n\"userns-remap\": \"a\",\n\"userns-remap\": \"default\"\n}"}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Warn, `"userns-remap" is given again at line 3 (first at line 2)`)
	})
	// R29, R30: the syntax depends on the release.
	t.Run("BOM", func(t *testing.T) {
		fs := base(files{"etc/docker/daemon.json": "\xEF\xBB\xBF{}"})
		r := check(t, newEnv(t, fs, docker20), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "invalid character 'ï' looking for beginning of value", "dockerd 20.10.24+dfsg1 refuses to start", "sed -i")
		r = check(t, newEnv(t, fs, docker28), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "byte order mark, which dockerd 23.0 and later skip")
		r = check(t, newEnv(t, fs, ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "dockerd's version is unknown; releases before 23.0 refuse the file")
	})
	t.Run("empty, dockerd 20.10", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "\n"}), docker20), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "daemon.json:2:1: EOF", "dockerd 20.10.24+dfsg1 refuses to start", "write `{}` into it")
		r = check(t, newEnv(t, base(files{"etc/docker/daemon.json": ""}), ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "is empty: dockerd reads it as {}", "dockerd before 23.0 refuses an empty file")
	})
	t.Run("second object, dockerd 20.10", func(t *testing.T) {
		r := check(t, newEnv(t, base(files{"etc/docker/daemon.json": "{\"debug\": true}\n{\"userns-remap\": \"default\"}\n"}), docker20), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Warn, "line 2, column 1: data follows the object (`{\"userns-remap\": \"default\"}`), which dockerd 20.10.24+dfsg1 ignores",
			"dockerd 23.0 and later refuse the file", "merge what follows line 2 column 1 into the first object")
		env := newEnv(t, base(files{"etc/docker/daemon.json": "{\"debug\": true}\n{\"userns-remap\": \"default\"}\n"}), docker20)
		checkstest.Expect(t, check(t, env, "docker.userns_remap"), checks.Warn, "userns-remap is not enabled")
	})
	t.Run("UTF-16, dockerd 27", func(t *testing.T) {
		fs := base(files{"etc/docker/daemon.json": "\xff\xfe{\x00}\x00"})
		r := check(t, newEnv(t, fs, docker27), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "the file is UTF-16LE with a byte order mark, which dockerd 23.0 and later decode")
		r = check(t, newEnv(t, fs, docker20), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "invalid character 'ÿ'", "iconv -f UTF-16 -t UTF-8")
	})
	t.Run("graph", func(t *testing.T) {
		fs := base(files{"etc/docker/daemon.json": "{\n  \"graph\": \"/srv/docker\"\n}"})
		r := check(t, newEnv(t, fs, docker23), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "`the \"graph\" config file option is deprecated; use \"data-root\" instead`", `rename "graph" to "data-root"`)
		r = check(t, newEnv(t, fs, docker27), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "`the following directives don't match any configuration option: graph`")
		r = check(t, newEnv(t, fs, docker20), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, `"graph" (line 2) sets the data root`)
		if root, _ := facts.DockerDataRootOf(newEnv(t, fs, docker20)); root != "/srv/docker" {
			t.Errorf("20.10 data root = %s", root)
		}
		if root, _ := facts.DockerDataRootOf(newEnv(t, fs, docker27)); root != "/var/lib/docker" {
			t.Errorf("27 data root = %s", root)
		}
		fs["etc/docker/daemon.json"] = `{"graph": "/a", "data-root": "/b"}`
		r = check(t, newEnv(t, fs, docker20), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, `cannot specify both "graph" and "data-root" config file options`)
	})
	t.Run("config-file from a drop-in", func(t *testing.T) {
		fs := base(files{
			"lib/systemd/system/docker.service":                 ceUnit,
			"etc/systemd/system/docker.service.d/override.conf": "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// \\\n  --config-file /etc/docker/alt.json\n",
			"etc/docker/alt.json":                               "{\"debug\": true}",
			"etc/docker/daemon.json":                            "{broken",
		})
		env := newEnv(t, fs, "")
		r := check(t, env, "docker.daemon_json")
		// Field case 14: the file operators edit is not the one in effect.
		checkstest.Expect(t, r, checks.Warn, "/etc/docker/alt.json (--config-file in /etc/systemd/system/docker.service.d/override.conf line 4) is valid JSON",
			"/etc/docker/daemon.json exists but dockerd does not read it", "move what /etc/docker/daemon.json should say into /etc/docker/alt.json")
		if r.Evidence["path"] != "/etc/docker/alt.json" {
			t.Errorf("evidence path = %v", r.Evidence["path"])
		}
	})
	t.Run("config-file missing", func(t *testing.T) {
		fs := base(files{"lib/systemd/system/docker.service": strings.Replace(ceUnit, "-H fd://", "-H fd:// --config-file=/srv/docker.json", 1)})
		r := check(t, newEnv(t, fs, ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Fail, "/srv/docker.json does not exist, but --config-file in /lib/systemd/system/docker.service line 7 names it",
			"`unable to configure the Docker daemon with file /srv/docker.json: open /srv/docker.json: no such file or directory`", "remove `--config-file=/srv/docker.json`")
	})
	t.Run("snap Docker only", func(t *testing.T) {
		fs := base(files{"var/snap/docker/current/config/daemon.json": "{}"})
		r := check(t, newEnv(t, fs, ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Warn, "runs from the snap, which reads /var/snap/docker/current/config/daemon.json", "snap restart docker")
	})
	t.Run("snap and rootless beside the system dockerd", func(t *testing.T) {
		fs := base(files{
			"lib/systemd/system/docker.service":          ceUnit,
			"var/snap/docker/current/config/daemon.json": "{}",
			"home/alice/.config/docker/daemon.json":      "{}",
		})
		r := check(t, newEnv(t, fs, ""), "docker.daemon_json")
		checkstest.Expect(t, r, checks.Pass, "snap Docker's /var/snap/docker/current/config/daemon.json is not the file in effect", "/home/alice/.config/docker/daemon.json belongs to a rootless Docker")
	})
}

func TestUsernsRemap(t *testing.T) {
	dj := func(v string) files { return base(files{"etc/docker/daemon.json": `{"userns-remap": ` + v + "}"}) }
	for _, tc := range []struct {
		desc   string
		fs     files
		user   string
		status checks.Status
		say    []string
	}{
		{"not enabled", base(nil), "", checks.Warn,
			[]string{"userns-remap is not enabled: usernsctl apply --target docker would set \"default\" (default)", "dockremap, which do not exist yet"}},
		{"not enabled, --user", base(nil), "mapuser", checks.Warn,
			[]string{`would set "mapuser" (--user) → user mapuser (uid 1500), group mapuser (gid 1500)`, "usernsctl apply --target docker --user mapuser"}},
		{"default, dockremap to be created", dj(`"default"`), "", checks.Pass,
			[]string{`userns-remap "default" (daemon.json /etc/docker/daemon.json line 1) → user and group dockremap, which do not exist yet: dockerd creates them`}},
		{"user:group, by user name and uid", dj(`"mapuser:mapgroup"`), "", checks.Pass,
			[]string{"user mapuser (uid 1500), group mapgroup (gid 1600)", `looked up by "mapuser" or "1500" in /etc/subuid and /etc/subgid`}},
		{"uid", dj(`"1500"`), "", checks.Pass, []string{"user mapuser (uid 1500)"}},
		// R9: root is a silent fallback, not a refusal.
		{"root", dj(`"root"`), "", checks.Warn, []string{"user namespaces are OFF", "<data-root>/0.0", "still refuses --privileged", `set userns-remap to "default"`}},
		{"uid 0", dj(`"0:0"`), "", checks.Warn, []string{"user namespaces are OFF"}},
		{"root without its group", base(files{"etc/docker/daemon.json": `{"userns-remap": "root"}`, "etc/group": "daemon:x:1:\n"}), "", checks.Fail,
			[]string{"`Error during gid lookup for \"root\"`"}},
		// Another uid-0 account is remapped like any user.
		{"uid 0 under another name", base(files{"etc/docker/daemon.json": `{"userns-remap": "toor"}`, "etc/group": group + "toor:x:0:\n"}), "", checks.Pass,
			[]string{"user toor (uid 0), group toor (gid 0)", `looked up by "toor" or "0"`}},
		{"default:GROUP is dockremap", dj(`"default:docker"`), "", checks.Pass, []string{"user and group dockremap, which do not exist yet"}},
		{"+1500 is uid 1500", dj(`"+1500"`), "", checks.Pass, []string{"user mapuser (uid 1500)"}},
		// R32: null is unset.
		{"null", dj(`null`), "", checks.Warn, []string{"userns-remap is null (daemon.json /etc/docker/daemon.json line 1), which dockerd reads as unset: user namespaces are off"}},
		{"three parts", dj(`"a:b:c"`), "", checks.Fail, []string{`has 3 ":"-separated parts`}},
		{"empty group", dj(`"mapuser:"`), "", checks.Fail, []string{"the group part is empty"}},
		{"not a string", dj(`true`), "", checks.Fail, []string{`"userns-remap" is a boolean, want a string`, "daemon.json:1:2"}},
		{"missing user", dj(`"ghost"`), "", checks.Fail,
			[]string{`names user "ghost", which is not in /etc/passwd`, "useradd --system --no-create-home --shell /usr/sbin/nologin ghost"}},
		{"missing uid", dj(`"4242"`), "", checks.Fail, []string{"names uid 4242", "--uid 4242"}},
		{"missing group", dj(`"lonely"`), "", checks.Fail,
			[]string{`dockerd looks up group "lonely" (the user's name, as no group is given), which is not in /etc/group`, "`Error during gid lookup for \"lonely\"`", "groupadd --system lonely"}},
		{"missing named group", dj(`"mapuser:nogroup"`), "", checks.Fail, []string{"`Error during groupname lookup for \"nogroup\"`"}},
		{"missing gid", dj(`"mapuser:4343"`), "", checks.Fail, []string{"`Gid 4343 has no entry in /etc/passwd` (sic)"}},
		{"uid without a group of that gid", dj(`"1700"`), "", checks.Fail, []string{"`Gid 1700 has no entry in /etc/group`"}},
		{"--user differs", dj(`"default"`), "mapuser", checks.Warn,
			[]string{`userns-remap is "default" (daemon.json /etc/docker/daemon.json line 1) but --user asks for "mapuser"`}},
		{"--user root", base(nil), "root", checks.Warn, []string{"(--user)", "user namespaces are OFF"}},
		{"flag in the unit", base(files{"lib/systemd/system/docker.service": strings.Replace(ceUnit, "-H fd://", "-H fd:// --userns-remap=mapuser", 1)}), "", checks.Pass,
			[]string{`"mapuser" (--userns-remap in /lib/systemd/system/docker.service line 7)`}},
		{"daemon.json broken", base(files{"etc/docker/daemon.json": "{,}"}), "", checks.Skip, []string{"see docker.daemon_json"}},
		{"daemon.json broken, --user", base(files{"etc/docker/daemon.json": "{,}"}), "mapuser", checks.Skip, []string{"see docker.daemon_json"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			env := newEnv(t, tc.fs, "")
			env.User = tc.user
			checkstest.Expect(t, check(t, env, "docker.userns_remap"), tc.status, tc.say...)
		})
	}
}

func TestFlagConflicts(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		fs     files
		status checks.Status
		say    []string
	}{
		{"no unit", base(nil), checks.Pass, []string{"no docker.service found (/etc/systemd/system/docker.service"}},
		{"CE unit, clean daemon.json", base(files{
			"lib/systemd/system/docker.service": ceUnit,
			"etc/docker/daemon.json":            `{"userns-remap": "default"}`,
		}), checks.Pass, []string{"none of dockerd's 2 flags (/lib/systemd/system/docker.service) is also set in daemon.json"}},
		{"hosts in daemon.json and -H in the unit", base(files{
			"lib/systemd/system/docker.service": ceUnit,
			"etc/docker/daemon.json":            "{\n  \"hosts\": [\"unix:///var/run/docker.sock\"]\n}",
		}), checks.Fail, []string{"the following directives are specified both as a flag and in the configuration file",
			"hosts: flag `-H fd://` (/lib/systemd/system/docker.service line 7) and /etc/docker/daemon.json line 2",
			"remove `-H fd://` from /lib/systemd/system/docker.service line 7, or \"hosts\" from /etc/docker/daemon.json"}},
		{"Debian DOCKER_OPTS userns-remap and daemon.json", base(files{
			"lib/systemd/system/docker.service": debianUnit,
			"etc/default/docker":                "# comment\nDOCKER_OPTS=\"--userns-remap=default\"\n",
			"etc/docker/daemon.json":            "{\n  \"userns-remap\": \"default\"\n}",
		}), checks.Fail, []string{"userns-remap: flag `--userns-remap=default` (/etc/default/docker line 2 (via $DOCKER_OPTS)) and /etc/docker/daemon.json line 2"}},
		{"RHEL sysconfig and daemon.json", base(files{
			"usr/lib/systemd/system/docker.service": rhelUnit,
			"etc/sysconfig/docker":                  rhelSysconfig,
			"etc/docker/daemon.json":                "{\n  \"exec-opts\": [\"native.cgroupdriver=cgroupfs\"],\n  \"log-driver\": \"json-file\"\n}",
		}), checks.Fail, []string{"exec-opts: flag `--exec-opt native.cgroupdriver=systemd` (/usr/lib/systemd/system/docker.service line 8) and /etc/docker/daemon.json line 2",
			"log-driver: flag `--log-driver=journald` (/etc/sysconfig/docker line 4 (via $OPTIONS)) and /etc/docker/daemon.json line 3"}},
		{"nested directive", base(files{
			"lib/systemd/system/docker.service": strings.Replace(ceUnit, "-H fd://", "-H fd:// --tlsverify", 1),
			"etc/docker/daemon.json":            "{\"tls-block\": {\n  \"tlsverify\": true}}",
		}), checks.Fail, []string{"tlsverify: flag `--tlsverify`", "daemon.json line 2"}},
		{"drop-in without ExecStart= reset", base(files{
			"lib/systemd/system/docker.service":                 ceUnit,
			"etc/systemd/system/docker.service.d/override.conf": "[Service]\nExecStart=/usr/bin/dockerd --userns-remap=default\n",
		}), checks.Fail, []string{"docker.service has 2 ExecStart= in effect (/lib/systemd/system/docker.service line 7, /etc/systemd/system/docker.service.d/override.conf line 2)",
			"put an empty `ExecStart=` line before the ExecStart= at /etc/systemd/system/docker.service.d/override.conf line 2"}},
		{"userns-remap only as a flag", base(files{
			"lib/systemd/system/docker.service":                 ceUnit,
			"etc/systemd/system/docker.service.d/override.conf": "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// --userns-remap mapuser\n",
		}), checks.Warn, []string{"userns-remap is a dockerd flag (`--userns-remap mapuser`, /etc/systemd/system/docker.service.d/override.conf line 3)",
			"usernsctl apply --target docker --user mapuser"}},
		{"DOCKER_OPTS ignored by the CE unit", base(files{
			"lib/systemd/system/docker.service": ceUnit,
			"etc/default/docker":                "DOCKER_OPTS=\"--userns-remap=default\"\n",
			"etc/docker/daemon.json":            `{"userns-remap": "default"}`,
		}), checks.Pass, []string{"/etc/default/docker sets DOCKER_OPTS at line 1, but docker.service does not pass it to dockerd"}},
		{"no unit, init script options", base(files{
			"etc/default/docker":     "DOCKER_OPTS=\"--debug\"\n",
			"etc/docker/daemon.json": `{"debug": true}`,
		}), checks.Fail, []string{"debug: flag `--debug` (/etc/default/docker line 1 (via $DOCKER_OPTS))"}},
		{"missing EnvironmentFile without -", base(files{
			"lib/systemd/system/docker.service": strings.Replace(ceUnit, "Type=notify", "Type=notify\nEnvironmentFile=/etc/docker/env", 1),
		}), checks.Fail, []string{"EnvironmentFile=/etc/docker/env does not exist"}},
		{"masked", base(files{"etc/systemd/system/docker.service": "", "lib/systemd/system/docker.service": ceUnit}), checks.Warn,
			[]string{"is masked", "systemctl unmask docker.service"}},
		{"unit is binary", base(files{"lib/systemd/system/docker.service": "\x7fELF\x00\x00"}), checks.Fail,
			[]string{"/lib/systemd/system/docker.service:1: binary data"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			checkstest.Expect(t, check(t, newEnv(t, tc.fs, ""), "docker.flag_conflicts"), tc.status, tc.say...)
		})
	}
}

func TestContainerdSnapshotter(t *testing.T) {
	for _, tc := range []struct {
		desc, daemon, unit, dockerd string
		status                      checks.Status
		say                         []string
	}{
		{"absent", `{}`, "", "", checks.Pass, []string{"not enabled explicitly"}},
		{"false", `{"features": {"containerd-snapshotter": false}}`, "", "", checks.Pass, nil},
		{"true, remap to come", "{\n  \"features\": {\n    \"containerd-snapshotter\": true\n  }\n}", "", "", checks.Fail,
			[]string{`"features": {"containerd-snapshotter": true} in /etc/docker/daemon.json line 3`, "once userns-remap is enabled", "not compatible with userns remapping", "dockerd's version is unknown: dockerd 29.0 and later assumed"}},
		{"true with remap set", `{"userns-remap": "default", "features": {"containerd-snapshotter": true}}`, "", "", checks.Fail,
			[]string{`with userns-remap "default" set (daemon.json /etc/docker/daemon.json line 1)`}},
		{"flag", `{}`, "--feature containerd-snapshotter", "", checks.Fail, []string{"`--feature containerd-snapshotter` (/lib/systemd/system/docker.service line 7)"}},
		{"flag false", `{}`, "--feature=containerd-snapshotter=false", "", checks.Pass, nil},
		{"Docker 29 note", `{}`, "", "Docker version 29.1.0, build 1\n", checks.Pass, []string{"containerd image store by default"}},
		// R23 by release.
		{"true, dockerd 29", `{"features": {"containerd-snapshotter": true}}`, "", "Docker version 29.1.0, build 1\n", checks.Fail,
			[]string{"dockerd 29.1.0 exits at start", "Please disable userns remapping or containerd-snapshotter"}},
		{"true, dockerd 28", `{"features": {"containerd-snapshotter": true}}`, "", "Docker version 28.5.2, build 3ef3c07\n", checks.Warn,
			[]string{"dockerd 28.5.2 starts with the containerd image store and chowns every container's snapshot", "BuildKit builds break", "dockerd 29.0 and later refuse"}},
		{"true, dockerd 26", `{"features": {"containerd-snapshotter": true}}`, "", "Docker version 26.1.3, build 1\n", checks.Warn, []string{"dockerd 26.1.3 starts"}},
		{"true, dockerd 24", `{"features": {"containerd-snapshotter": true}}`, "", "Docker version 24.0.7, build 1\n", checks.Warn,
			[]string{"has no ID mapping before 25.0", "not verified"}},
		{"true, dockerd 23", `{"features": {"containerd-snapshotter": true}}`, "", "Docker version 23.0.6, build 1\n", checks.Pass,
			[]string{"which dockerd 23.0.6 ignores"}},
		{"true, dockerd 20.10", `{"features": {"containerd-snapshotter": true}}`, "", "Docker version 20.10.24, build 1\n", checks.Pass, []string{"ignores"}},
		{"flag, dockerd 27 has none", `{}`, "--feature containerd-snapshotter", "Docker version 27.3.1, build 1\n", checks.Pass,
			[]string{"dockerd 27.3.1 has no --feature flag (it came in 28.0)"}},
		// R24: a snapshotter name as storage-driver, dockerd 29 remapping.
		{"storage-driver overlayfs, dockerd 29", `{"userns-remap": "default", "storage-driver": "overlayfs"}`, "", "Docker version 29.1.0, build 1\n", checks.Fail,
			[]string{`storage-driver "overlayfs" (/etc/docker/daemon.json line 1) is no graphdriver`, "`graphdriver is explicitly enabled but \"overlayfs\" is not registered`", `set "storage-driver": "overlay2"`}},
		{"-s overlayfs, dockerd 29", `{}`, "-s overlayfs", "Docker version 29.1.0, build 1\n", checks.Fail, []string{"`-s overlayfs` (/lib/systemd/system/docker.service line 7)"}},
		{"storage-driver overlay2, dockerd 29", `{"storage-driver": "overlay2"}`, "", "Docker version 29.1.0, build 1\n", checks.Pass, nil},
		{"storage-driver overlayfs, dockerd 28", `{"storage-driver": "overlayfs"}`, "", "Docker version 28.5.2, build 1\n", checks.Pass, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			fs := base(files{"etc/docker/daemon.json": tc.daemon})
			if tc.unit != "" {
				fs["lib/systemd/system/docker.service"] = strings.Replace(ceUnit, "-H fd://", "-H fd:// "+tc.unit, 1)
			}
			cmds := ""
			if tc.dockerd != "" {
				cmds = `{"dockerd --version": "` + strings.ReplaceAll(tc.dockerd, "\n", `\n`) + `"}`
			}
			checkstest.Expect(t, check(t, newEnv(t, fs, cmds), "docker.containerd_snapshotter"), tc.status, tc.say...)
		})
	}
}

func TestDefaultRuntime(t *testing.T) {
	r := check(t, newEnv(t, base(nil), ""), "docker.default_runtime")
	checkstest.Expect(t, r, checks.Pass, "no default-runtime is set")

	r = check(t, newEnv(t, base(files{"etc/docker/daemon.json": "{\n  \"default-runtime\": \"runsc\",\n  \"runtimes\": {\"runsc\": {\"path\": \"/usr/local/bin/runsc\"}}\n}"}), ""), "docker.default_runtime")
	checkstest.Expect(t, r, checks.Warn, `default-runtime is "runsc" (/usr/local/bin/runsc) (/etc/docker/daemon.json line 2)`, "--runtime runsc")

	r = check(t, newEnv(t, base(files{"etc/docker/daemon.json": `{"default-runtime": "io.containerd.runc.v2"}`}), ""), "docker.default_runtime")
	checkstest.Expect(t, r, checks.Pass, "is runc")

	// RHEL 7: docker-runc is runc renamed, set by flags.
	r = check(t, newEnv(t, base(files{"usr/lib/systemd/system/docker.service": rhelUnit}), ""), "docker.default_runtime")
	checkstest.Expect(t, r, checks.Pass, `default-runtime "docker-runc"`, "runc under another name (/usr/libexec/docker/docker-runc-current)")
}

func hostconfig(net, pid string, priv bool, userns string) string {
	p := "false"
	if priv {
		p = "true"
	}
	return `{"NetworkMode":"` + net + `","PidMode":"` + pid + `","Privileged":` + p + `,"UsernsMode":"` + userns + `","Binds":null}`
}

func TestHostNamespaces(t *testing.T) {
	const a = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
	const b = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222"
	const c = "cccccccccccc3333333333333333333333333333333333333333333333333333"
	const d = "dddddddddddd4444444444444444444444444444444444444444444444444444"
	fs := base(files{
		"etc/docker/daemon.json":                          `{"data-root": "/srv/docker"}`,
		"srv/docker/containers/" + a + "/hostconfig.json": hostconfig("host", "host", false, ""),
		"srv/docker/containers/" + a + "/config.v2.json":  `{"Name":"/node_exporter"}`,
		"srv/docker/containers/" + b + "/hostconfig.json": hostconfig("bridge", "", true, ""),
		"srv/docker/containers/" + c + "/hostconfig.json": hostconfig("host", "", true, "host"),
		"srv/docker/containers/" + d + "/hostconfig.json": hostconfig("bridge", "", false, ""),
		// The default data root is not the one in effect.
		"var/lib/docker/containers/" + d + "/hostconfig.json": hostconfig("host", "", false, ""),
	})
	r := check(t, newEnv(t, fs, ""), "docker.host_namespaces")
	checkstest.Expect(t, r, checks.Warn, "2 of 4 containers under /srv/docker use host namespaces or privileged mode",
		"aaaaaaaaaaaa (node_exporter): --net=host, --pid=host", "bbbbbbbbbbbb: --privileged",
		"cannot share the host's network namespace when user namespaces are enabled", "does not load them (they vanish from view", "recreating them as they are", "--userns=host")
	if ids, _ := r.Evidence["host_namespace_containers"].([]string); strings.Join(ids, ",") != "aaaaaaaaaaaa,bbbbbbbbbbbb" {
		t.Errorf("evidence = %v", r.Evidence["host_namespace_containers"])
	}

	r = check(t, newEnv(t, base(files{"var/lib/docker/containers/" + d + "/hostconfig.json": hostconfig("bridge", "", false, "")}), ""), "docker.host_namespaces")
	checkstest.Expect(t, r, checks.Pass, "none of the 1 container under /var/lib/docker (default)")

	r = check(t, newEnv(t, base(files{"var/lib/docker/containers/" + d + "/hostconfig.json": "\x00garbage"}), ""), "docker.host_namespaces")
	checkstest.Expect(t, r, checks.Pass, "1 hostconfig.json file could not be read")

	r = check(t, newEnv(t, base(nil), ""), "docker.host_namespaces")
	checkstest.Expect(t, r, checks.Pass, "no containers under /var/lib/docker")
}

func TestDataRoot(t *testing.T) {
	const img = "var/lib/docker/image/overlay2/imagedb/content/sha256/"
	withContent := files{
		img + "1111": "{}", img + "2222": "{}",
		"var/lib/docker/volumes/metadata.db":   "",
		"var/lib/docker/volumes/pgdata/_data/": "",
		"etc/subuid":                           "dockremap:100000:65536\n",
		"etc/subgid":                           "dockremap:200000:65536\n",
	}
	r := check(t, newEnv(t, base(withContent), ""), "docker.data_root")
	checkstest.Expect(t, r, checks.Warn, "/var/lib/docker (default) holds 2 images, 0 containers and 1 volume that vanish from view once userns-remap is enabled",
		"dockerd then keeps everything under /var/lib/docker/100000.200000 (images, containers, volumes, networks, plugins, swarm state, build cache)", "group-owned by the remapped root's gid", "docker save -o images.tar")

	// Configured but dockerd not restarted yet: still about to vanish.
	fs := base(withContent)
	fs["etc/docker/daemon.json"] = `{"userns-remap": "default"}`
	r = check(t, newEnv(t, fs, ""), "docker.data_root")
	checkstest.Expect(t, r, checks.Warn, `when dockerd restarts with userns-remap "default" (daemon.json /etc/docker/daemon.json line 1)`)

	// Active: the remapped root exists.
	fs["var/lib/docker/100000.200000/image/"] = ""
	r = check(t, newEnv(t, fs, ""), "docker.data_root")
	checkstest.Expect(t, r, checks.Pass, "userns-remap is on (daemon.json /etc/docker/daemon.json line 1) and dockerd keeps its data in /var/lib/docker/100000.200000",
		"the 2 images, 0 containers and 1 volume made before remap stay in /var/lib/docker")

	r = check(t, newEnv(t, base(files{"var/lib/docker/": ""}), ""), "docker.data_root")
	checkstest.Expect(t, r, checks.Pass, "holds no images, containers or volumes")

	r = check(t, newEnv(t, base(nil), ""), "docker.data_root")
	checkstest.Expect(t, r, checks.Pass, "/var/lib/docker (default) does not exist yet")

	// data-root from a flag wins over daemon.json.
	fs = base(files{
		"lib/systemd/system/docker.service": strings.Replace(ceUnit, "-H fd://", "-H fd:// --data-root=/data/docker", 1),
		"etc/docker/daemon.json":            `{"data-root": "/srv/docker"}`,
		"data/docker/volumes/v1/":           "",
	})
	r = check(t, newEnv(t, fs, ""), "docker.data_root")
	checkstest.Expect(t, r, checks.Warn, "/data/docker (--data-root in /lib/systemd/system/docker.service line 7) holds 0 images, 0 containers and 1 volume", "<data-root>/<uid>.<gid>")
}

// R22: every existing directory above <data-root>/<uid>.<gid> must give
// the remapped root x.
func TestRemappedRootAccess(t *testing.T) {
	ranges := files{"etc/subuid": "mapuser:200000:65536\n", "etc/subgid": "mapuser:300000:65536\n"}
	for _, tc := range []struct {
		desc   string
		fs     files
		status checks.Status
		say    []string
	}{
		{"default data root", base(files{"etc/docker/daemon.json": `{"userns-remap": "mapuser"}`, "var/lib/docker/": ""}), checks.Pass,
			[]string{"every directory above /var/lib/docker/<uid>.<gid> gives the remapped root search permission: /var/lib, /var"}},
		{"under a 0750 home", base(files{
			"etc/docker/daemon.json": `{"userns-remap": "mapuser", "data-root": "/home/alice/docker"}`,
			"home/alice/docker/":     "",
			".usernsctl/stat.json":   `{"/home/alice": {"mode": "0750", "uid": 1000, "gid": 1000}}`,
			"etc/subuid":             ranges["etc/subuid"], "etc/subgid": ranges["etc/subgid"],
		}), checks.Fail, []string{"/home/alice (mode 0750, owner 1000:1000) gives no search permission",
			"uid 200000, gid 300000", "`a subdirectory in your graphroot path (/home/alice/docker/200000.300000) restricts access to the remapped root uid/gid; please fix by allowing 'o+x' permissions on existing directories`",
			"`chmod o+x /home/alice`"}},
		{"group of the remapped gid", base(files{
			"etc/docker/daemon.json": `{"userns-remap": "mapuser", "data-root": "/srv/d/docker"}`,
			"srv/d/":                 "",
			".usernsctl/stat.json":   `{"/srv/d": {"mode": "0710", "uid": 0, "gid": 300000}, "/srv": {"mode": "0701"}}`,
			"etc/subuid":             ranges["etc/subuid"], "etc/subgid": ranges["etc/subgid"],
		}), checks.Pass, []string{"/srv/d, /srv"}},
		// The real path counts: a link into a closed directory.
		{"linked into a 0700 directory", base(files{
			"etc/docker/daemon.json": `{"userns-remap": "mapuser"}`,
			"var/lib/docker":         "-> /data/private/docker",
			"data/private/docker/":   "",
			".usernsctl/stat.json":   `{"/data/private": {"mode": "0700", "uid": 0, "gid": 0}}`,
			"etc/subuid":             ranges["etc/subuid"], "etc/subgid": ranges["etc/subgid"],
		}), checks.Fail, []string{"/data/private (mode 0700, owner 0:0)", "(/data/private/docker/200000.300000)"}},
		// No ranges yet: only o+x counts.
		{"ids not allocated yet", base(files{
			"etc/docker/daemon.json": `{"data-root": "/home/alice/docker"}`,
			"home/alice/":            "",
			".usernsctl/stat.json":   `{"/home/alice": {"mode": "0750", "uid": 1000, "gid": 1000}}`,
		}), checks.Fail, []string{"whose ids are not allocated yet, so only o+x counts", "(/home/alice/docker/<uid>.<gid>)", "once userns-remap is enabled"}},
		// R9: root keeps the pair 0:0, and the test still runs.
		{"root", base(files{
			"etc/docker/daemon.json": `{"userns-remap": "root", "data-root": "/home/alice/docker"}`,
			"home/alice/":            "",
			".usernsctl/stat.json":   `{"/home/alice": {"mode": "0750", "uid": 1000, "gid": 1000}}`,
		}), checks.Fail, []string{"uid 0, gid 0", "(/home/alice/docker/0.0)"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			checkstest.Expect(t, check(t, newEnv(t, tc.fs, ""), "docker.remapped_root_access"), tc.status, tc.say...)
		})
	}
}

// R33: a container under the remapped root dockerd uses fails at start;
// R34: writable-cgroups, 28 and later.
func TestHostNamespacesActiveRoot(t *testing.T) {
	const a = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
	const b = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222"
	fs := base(files{
		"etc/docker/daemon.json": `{"userns-remap": "mapuser"}`,
		"etc/subuid":             "mapuser:200000:65536\n", "etc/subgid": "mapuser:200000:65536\n",
		"var/lib/docker/200000.200000/containers/" + a + "/hostconfig.json": hostconfig("host", "", false, ""),
		"var/lib/docker/200000.200000/containers/" + b + "/hostconfig.json": `{"NetworkMode":"bridge","SecurityOpt":["writable-cgroups=false"]}`,
	})
	r := check(t, newEnv(t, fs, docker28), "docker.host_namespaces")
	checkstest.Expect(t, r, checks.Fail, "2 of 2 containers under /var/lib/docker/200000.200000, the data root dockerd uses", "dockerd refuses to start them",
		"bbbbbbbbbbbb: --security-opt writable-cgroups", "`option WritableCgroups conflicts with user namespaces and rootless mode`")
	r = check(t, newEnv(t, fs, docker27), "docker.host_namespaces")
	checkstest.Expect(t, r, checks.Fail, "1 of 2 containers")
}

// R8: an account /etc/passwd lacks, where nsswitch.conf names another
// source, is asked of getent as dockerd does.
func TestUsernsRemapNSS(t *testing.T) {
	fs := base(files{"etc/docker/daemon.json": `{"userns-remap": "ldapmap"}`, "etc/nsswitch.conf": "passwd: files ldap\ngroup: files ldap\n"})
	for _, tc := range []struct {
		desc, cmds string
		status     checks.Status
		say        []string
	}{
		{"found", `{"getent passwd ldapmap": "ldapmap:*:5000:5000::/:/bin/false\n", "getent group ldapmap": "ldapmap:*:5000:\n"}`, checks.Pass,
			[]string{"user ldapmap (uid 5000), group ldapmap (gid 5000) (passwd found by `getent passwd ldapmap`: /etc/nsswitch.conf names files ldap)"}},
		{"group missing", `{"getent passwd ldapmap": "ldapmap:*:5000:5000::/:/bin/false\n", "getent group ldapmap": {"stdout": "", "exit": 2}}`, checks.Fail,
			[]string{"`Error during gid lookup for \"ldapmap\"`", "`getent group ldapmap` finds nothing either"}},
		{"not found", `{"getent passwd ldapmap": {"stdout": "", "exit": 2}}`, checks.Fail, []string{"`Error during uid lookup for \"ldapmap\"`", "`getent passwd ldapmap` finds nothing either"}},
		{"not asked", "", checks.Warn, []string{"unless another source knows it: /etc/nsswitch.conf line 1 (passwd: files ldap) names more than the files", "run `getent passwd ldapmap` on the host"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			checkstest.Expect(t, check(t, newEnv(t, fs, tc.cmds), "docker.userns_remap"), tc.status, tc.say...)
		})
	}
}

func TestMisspelledKeys(t *testing.T) {
	for _, tc := range []struct {
		key, want string
		ok        bool
	}{
		{"userns_remap", "userns-remap", true},
		{"Userns-Remap", "userns-remap", true},
		{"usernsremap", "userns-remap", true},
		{"data_root", "data-root", true},
		{"Features", "features", true},
		{"userns-remap", "", false}, // the flag name itself
		{"data-root", "", false},
		{"log-driver", "", false}, // not one usernsctl reads: not judged
	} {
		t.Run(tc.key, func(t *testing.T) {
			got, ok := misspelled(tc.key)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("misspelled(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.ok)
			}
		})
	}
}
