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
	// -g (the old --graph) on the command line beats daemon.json.
	if root, src := DockerDataRootOf(env); root != "/old/graph" || !strings.HasPrefix(src, "--graph in ") {
		t.Errorf("DockerDataRoot = %q, %q", root, src)
	}
}

func TestRemappedRootUsesFirstRange(t *testing.T) {
	env := checkstest.Env(t, checks.Docker, map[string]string{
		// dockerd matches the owner by name or by uid, in file order.
		"etc/subuid": "alice:100000:65536\n1500:300000:65536\nmapuser:400000:65536\n",
		"etc/subgid": "mapuser:500000:65536\n",
	}, "", nil)
	a := remap.Account{User: "mapuser", UID: 1500, Exists: true}
	dir, ok := RemappedRootOf(env, "/var/lib/docker", a)
	if !ok || dir != "/var/lib/docker/300000.500000" {
		t.Fatalf("RemappedRoot = %q %v", dir, ok)
	}
	if _, ok := RemappedRootOf(env, "/var/lib/docker", remap.Account{User: "bob", UID: 7}); ok {
		t.Fatal("RemappedRoot for an account without ranges")
	}
}
