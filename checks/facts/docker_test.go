package facts

import (
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/remap"
)

const unitWithFlags = "[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// --userns-remap=fromflag --config-file etc/docker/alt.json -g /old/graph\n"

func TestDockerRemapPrecedence(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		files  map[string]string
		user   string
		spec   string
		source string
	}{
		{"default", nil, "", "default", "default"},
		{"--user wins", map[string]string{"etc/docker/daemon.json": `{"userns-remap": "a"}`}, "b:c", "b:c", "--user"},
		{"daemon.json", map[string]string{"etc/docker/daemon.json": "{\n\"userns-remap\": \"a\"}"}, "", "a", "daemon.json /etc/docker/daemon.json line 2"},
		{"flag when daemon.json has none", map[string]string{"lib/systemd/system/docker.service": unitWithFlags}, "", "fromflag", "--userns-remap in /lib/systemd/system/docker.service line 3"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			env := checkstest.Env(t, checks.Docker, tc.files, "", nil)
			env.User = tc.user
			dr := DockerRemapOf(env)
			if dr.Err != nil || dr.Spec.Raw != tc.spec || dr.Source != tc.source {
				t.Fatalf("DockerRemapOf = %q, %q, %v; want %q, %q", dr.Spec.Raw, dr.Source, dr.Err, tc.spec, tc.source)
			}
		})
	}
	env := checkstest.Env(t, checks.Docker, map[string]string{"etc/docker/daemon.json": `{"userns-remap": ["x"]}`}, "", nil)
	if err := DockerRemapOf(env).Err; err == nil || !strings.Contains(err.Error(), "is an array, want a string") {
		t.Fatalf("non-string userns-remap: %v", err)
	}
}

func TestDockerConfigFollowsUnit(t *testing.T) {
	env := checkstest.Env(t, checks.Docker, map[string]string{
		"lib/systemd/system/docker.service": unitWithFlags,
		"etc/docker/alt.json":               `{"data-root": "/srv/docker"}`,
	}, "", nil)
	d := DockerConfigOf(env)
	if d.Err != nil {
		t.Fatal(d.Err)
	}
	// A relative --config-file is relative to /, where systemd starts dockerd.
	if d.Path != "/etc/docker/alt.json" || !d.Exists || d.Source != "--config-file in /lib/systemd/system/docker.service line 3" {
		t.Fatalf("DockerConfig = %+v", d)
	}
	// dockerd 23 and later refuse -g (the old --graph): daemon.json's
	// data-root is the one that counts (assumed for an unknown version).
	if root, src := DockerDataRootOf(env); root != "/srv/docker" || src != "daemon.json /etc/docker/alt.json line 1" {
		t.Errorf("DockerDataRoot = %q, %q", root, src)
	}
	// Before, -g on the command line beats daemon.json.
	env = checkstest.Env(t, checks.Docker, map[string]string{
		"lib/systemd/system/docker.service": unitWithFlags,
		"etc/docker/alt.json":               `{"data-root": "/srv/docker"}`,
	}, `{"dockerd --version": "Docker version 20.10.24, build 5d6db84\n"}`, nil)
	if root, src := DockerDataRootOf(env); root != "/old/graph" || !strings.HasPrefix(src, "--graph in ") {
		t.Errorf("DockerDataRoot (20.10) = %q, %q", root, src)
	}
}

// dockerd works under the data root's real path (CreateDaemonRoot).
func TestDockerDataRootReal(t *testing.T) {
	env := checkstest.Env(t, checks.Docker, map[string]string{
		"etc/docker/daemon.json": `{"data-root": "/var/lib/docker"}`,
		"var/lib/docker":         "-> ../../data/docker",
		"data":                   "-> srv",
		"srv/docker/":            "",
	}, "", nil)
	d := DockerDataRootRealOf(env)
	if d.Err != nil || d.Real != "/srv/docker" || d.Configured != "/var/lib/docker" || !d.Exists {
		t.Fatalf("DockerDataRootReal = %+v", d)
	}
	env = checkstest.Env(t, checks.Docker, map[string]string{"etc/docker/daemon.json": `{"data-root": "/new/docker"}`}, "", nil)
	if d := DockerDataRootRealOf(env); d.Err != nil || d.Real != "/new/docker" || d.Exists {
		t.Fatalf("a data root to be created: %+v", d)
	}
	env = checkstest.Env(t, checks.Docker, map[string]string{"var/lib/docker": "a file"}, "", nil)
	if d := DockerDataRootRealOf(env); d.Err == nil {
		t.Fatalf("a file as data root: %+v", d)
	}
}

func TestRemappedRootUsesFirstRange(t *testing.T) {
	files := map[string]string{
		"etc/subuid": "alice:100000:65536\nmapuser:400000:65536\n1500:300000:65536\n",
		"etc/subgid": "mapuser:500000:65536\n",
	}
	a := remap.Account{User: "mapuser", UID: 1500, Exists: true}
	for _, tc := range []struct{ dockerd, want string }{
		// 28 and later: by name or by uid, in file order.
		{"Docker version 28.5.2, build 3ef3c07", "/var/lib/docker/400000.500000"},
		{"", "/var/lib/docker/400000.500000"},
		// Before 28: the uid's lines, the name's only when there are none.
		{"Docker version 27.5.1, build 9f9e405", "/var/lib/docker/300000.500000"},
		{"Docker version 20.10.24, build 5d6db84", "/var/lib/docker/300000.500000"},
	} {
		cmds := ""
		if tc.dockerd != "" {
			cmds = `{"dockerd --version": "` + tc.dockerd + `\n"}`
		}
		env := checkstest.Env(t, checks.Docker, files, cmds, nil)
		if dir, ok := RemappedRootOf(env, "/var/lib/docker", a); !ok || dir != tc.want {
			t.Errorf("%s: RemappedRoot = %q %v, want %s", tc.dockerd, dir, ok, tc.want)
		}
	}
	env := checkstest.Env(t, checks.Docker, files, "", nil)
	if _, ok := RemappedRootOf(env, "/var/lib/docker", remap.Account{User: "bob", UID: 7}); ok {
		t.Fatal("RemappedRoot for an account without ranges")
	}
}
