package versions

import (
	"fmt"
	"strings"
	"testing"
)

func TestFromOutputRealForms(t *testing.T) {
	cases := []struct {
		prog, out, raw, core string
	}{
		{Containerd, "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376\n", "2.1.4", "2.1.4"},
		{Containerd, "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n", "1.6.20~ds1", "1.6.20"},
		{Containerd, "containerd github.com/containerd/containerd/v2 2.1.9+unknown \n", "2.1.9+unknown", "2.1.9"},
		{Runc, "runc version 1.2.6\ncommit: v1.2.6-0-ge89a299\nspec: 1.2.0\ngo: go1.22.12\nlibseccomp: 2.5.5\n", "1.2.6", "1.2.6"},
		{Runc, "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n", "1.1.5+ds1", "1.1.5"},
		{Crun, "crun version 1.9\ncommit: a538ac4ea1ff319bcfe2bf81cb5c6f687e2dc9d3\nrundir: /run/crun\nspec: 1.0.0\n+SYSTEMD +SELINUX +APPARMOR\n", "1.9", "1.9.0"},
		{Crun, "crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\n", "1.8.1", "1.8.1"},
		{Dockerd, "Docker version 28.5.2, build 3ef3c07\n", "28.5.2", "28.5.2"},
		{Dockerd, "Docker version 20.10.24+dfsg1, build 5d6db84\n", "20.10.24+dfsg1", "20.10.24"},
		{Kubelet, "Kubernetes v1.33.1\n", "1.33.1", "1.33.1"},
		{Crio, "crio version 1.30.0\nVersion:        1.30.0\nGitCommit:      abc\n", "1.30.0", "1.30.0"},
		{Crio, "INFO[0000] Starting CRI-O\nVersion:          1.25.2\nGitCommit: x\n", "1.25.2", "1.25.2"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {

			p, err := FromOutput(c.prog, strings.NewReader(c.out))
			if err != nil {
				t.Errorf("%s %q: %v", c.prog, c.out, err)
				return
			}
			if p.Raw != c.raw || p.Core.String() != c.core {
				t.Errorf("%s %q: got raw %q core %q, want %q %q", c.prog, c.out, p.Raw, p.Core, c.raw, c.core)
			}
		})
	}
}

func TestFromOutputRejects(t *testing.T) {
	for i, c := range []struct{ prog, out string }{
		{Runc, ""},
		{Runc, "\x00\x01\x02 binary junk"},
		{Containerd, "containerd"},
		{Dockerd, "Docker version , build"},
		{Kubelet, "Kubernetes"},
		{Crio, "something else entirely"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if p, err := FromOutput(c.prog, strings.NewReader(c.out)); err == nil {
				t.Errorf("%s %q: want error, got %v", c.prog, c.out, p)
			}
		})
	}
}

// The trap from traps.md: go-version treats "-45-generic" as a pre-release
// and a constraint never matches it. Core comparison must.
func TestDistroSuffixIsNotPrerelease(t *testing.T) {
	for i, c := range []struct {
		rel, min string
		want     bool
	}{
		{"6.8.0-45-generic", "5.19", true},
		{"6.8.0-45-generic", "6.3", true},
		{"5.14.0-585.el9.x86_64", "5.19", false},
		{"5.14.0-585.el9.x86_64", "5.12", true},
		{"3.10.0-1160.el7.x86_64", "3.10", true},
		{"6.1.0-26-amd64", "6.3", false},
		{"6.18.44-fc-v769", "6.3", true},
		{"6.3", "6.3", true},
		{"1.6.20~ds1", "1.7", false},
		{"20.10.24+dfsg1", "20.10", true},
		{"2.1.9+unknown", "2.0", true},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p, err := Parse(c.rel)
			if err != nil {
				t.Fatalf("%s: %v", c.rel, err)
			}
			if got := p.AtLeast(c.min); got != c.want {
				t.Errorf("%s >= %s: got %v want %v", c.rel, c.min, got, c.want)
			}
		})
	}
}
