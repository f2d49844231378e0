package procfs

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/hosttree"
)

func TestParseIDMap(t *testing.T) {
	good := []struct {
		in   string
		want []IDMap
	}{
		{"         0          0 4294967295\n", []IDMap{{0, 0, 4294967295}}},
		{"         0     100000      65536\n     65536     300000      65536\n", []IDMap{{0, 100000, 65536}, {65536, 300000, 65536}}},
		{"0\t1310720\t65536", []IDMap{{0, 1310720, 65536}}}, // no final newline
		{"\n\n", nil},
	}
	for _, c := range good {
		t.Run(c.in, func(t *testing.T) {

			got, err := ParseIDMap(strings.NewReader(c.in), "uid_map")
			if err != nil || FormatMap(got) != FormatMap(c.want) {
				t.Errorf("ParseIDMap(%q) = %v, %v; want %v", c.in, got, err, c.want)
			}
		})
	}
	bad := []struct{ in, want string }{
		{"0 100000\n", "uid_map:1:1: 2 field(s)"},
		{"0 100000 65536 7\n", "uid_map:1:16: extra field"},
		{"0 1e5 65536\n", `uid_map:1:3: "1e5" is not an id`},
		{"0 -1 65536\n", `uid_map:1:3: "-1" is not an id`},
		{"0 4294967295 2\n", "not a valid range"},
		{"0 0 0\n", "not a valid range"},
		{"0 0 1\n\x00\x00\x00", "uid_map:2:1: NUL byte"},
		{"0 0 1\n\xff\xfe 1 2\n", "uid_map:2: invalid UTF-8"},
		{strings.Repeat("7", 10<<20), "uid_map:1: line longer than 256 bytes"},
		{strings.Repeat("0 0 1\n", 341), "uid_map:341: more than 340 lines"},
	}
	for i, c := range bad {
		t.Run(fmt.Sprint(i), func(t *testing.T) {

			_, err := ParseIDMap(strings.NewReader(c.in), "uid_map")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				in := c.in
				if len(in) > 40 {
					in = in[:40] + "…"
				}
				t.Errorf("ParseIDMap(%q) = %v, want an error with %q", in, err, c.want)
			}
		})
	}
}

// A junk line must never read as root mapped to root, which is what a
// lenient parser that reads non-numbers as 0 makes of it.
func FuzzParseIDMap(f *testing.F) {
	f.Add([]byte("0 100000 65536\n"))
	f.Add([]byte("abc def ghi\n"))
	f.Add([]byte("0 0 4294967295"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseIDMap(bytes.NewReader(b), "f")
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Count == 0 || m.Inside+m.Count > IDSpace || m.Outside+m.Count > IDSpace {
				t.Fatalf("%q parsed into an invalid range %v", b, m)
			}
		}
		again, err := ParseIDMap(strings.NewReader(strings.ReplaceAll(FormatMap(ms), "; ", "\n")), "f")
		if err != nil || FormatMap(again) != FormatMap(ms) {
			t.Fatalf("round trip of %q: %v, %v", b, again, err)
		}
	})
}

func TestIdentityAndToOutside(t *testing.T) {
	if !Identity([]IDMap{{0, 0, 4294967295}}) || Identity([]IDMap{{0, 0, 65536}}) || Identity([]IDMap{{0, 100000, 65536}}) {
		t.Error("Identity")
	}
	m := []IDMap{{0, 100000, 65536}, {65536, 300000, 10}}
	for i, c := range []struct {
		in, out uint64
		ok      bool
	}{{0, 100000, true}, {65535, 165535, true}, {65536, 300000, true}, {65546, 0, false}} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if out, ok := ToOutside(m, c.in); out != c.out || ok != c.ok {
				t.Errorf("ToOutside(%d) = %d, %v", c.in, out, ok)
			}
		})
	}
}

// mkproc adds files and symlinks (path → target) to the tree at dir.
func mkproc(t *testing.T, dir string, files map[string]string, links map[string]string) {
	t.Helper()
	for p, s := range files {
		hosttree.Write(t, dir, p, s)
	}
	for p, target := range links {
		hosttree.Write(t, dir, p, hosttree.Link+target)
	}
}

func TestObserve(t *testing.T) {
	dir := t.TempDir()
	mkproc(t, dir, map[string]string{
		// comm with spaces and parentheses: fields restart after the last ')'.
		"proc/40/stat":      "40 (my (odd) name) S 30 40 40 0 -1\n",
		"proc/30/stat":      "30 (containerd-shim) S 1 30 30 0 -1\n",
		"proc/1/stat":       "1 (systemd) S 0 1 1 0 -1\n",
		"proc/40/uid_map":   "0 100000 65536\n",
		"proc/40/gid_map":   "0 100000 65536\n",
		"proc/40/cmdline":   "/bin/sh\x00-c\x00sleep 1\x00",
		"proc/40/cgroup":    "0::/system.slice/docker-3f2a9c1b2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8.scope\n",
		"proc/40/mountinfo": "96 71 0:39 / / rw,relatime,idmapped - overlay overlay rw,lowerdir=/a\\:b:/c\n",
	}, map[string]string{
		"proc/40/ns/user": "user:[4026532250]",
		"proc/40/ns/mnt":  "mnt:[4026532251]",
		"proc/40/ns/net":  "ipc:[4026532252]", // wrong kind
		"proc/30/ns/user": "user:[4026531837]",
	})
	h, err := host.At(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Observe(h, 40)
	if err != nil {
		t.Fatal(err)
	}
	if p.Stat.Comm != "my (odd) name" || p.Stat.PPID != 30 {
		t.Errorf("stat: %+v", p.Stat)
	}
	if ino, ok := p.UserNS(); !ok || ino != 4026532250 {
		t.Errorf("userns %d %v", ino, ok)
	}
	if err := p.NSErr["net"]; err == nil || !strings.Contains(err.Error(), "is not a net namespace") {
		t.Errorf("net: %v", err)
	}
	if p.NSErr["time"] == nil {
		t.Error("a missing link should be an error")
	}
	if p.Runtime == nil || p.Runtime.PID != 30 || p.RuntimeUserNS != 4026531837 {
		t.Errorf("runtime: %+v %d", p.Runtime, p.RuntimeUserNS)
	}
	if p.Chain() != "40 my (odd) name ← 30 containerd-shim" {
		t.Errorf("chain: %s", p.Chain())
	}
	if !strings.HasPrefix(p.ContainerID, "3f2a9c1b2d4e") || len(p.Cmdline) != 3 {
		t.Errorf("container %q cmdline %q", p.ContainerID, p.Cmdline)
	}
	if len(p.Mounts) != 1 || p.Mounts[0].Mountpoint != "/" {
		t.Errorf("mounts: %v %v", p.Mounts, p.MountErr)
	}
	if _, err := Observe(h, 41); err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Errorf("missing pid: %v", err)
	}

	// A stat that is junk.
	mkproc(t, dir, map[string]string{"proc/50/stat": "\x00\x01\x02 junk"}, nil)
	if _, err := Observe(h, 50); err == nil || !strings.Contains(err.Error(), "/proc/50/stat:1") {
		t.Errorf("junk stat: %v", err)
	}
	// An ancestry loop stops.
	mkproc(t, dir, map[string]string{"proc/60/stat": "60 (a) S 61\n", "proc/61/stat": "61 (b) S 60\n"}, nil)
	if a, err := Ancestry(h, 60); err != nil || len(a) != 1 {
		t.Errorf("loop: %v %v", a, err)
	}
}

func TestPIDs(t *testing.T) {
	dir := t.TempDir()
	mkproc(t, dir, map[string]string{"proc/12/stat": "", "proc/3/stat": "", "proc/sys/x": "", "proc/self/stat": ""}, nil)
	h, _ := host.At(dir)
	got, err := PIDs(h)
	if err != nil || len(got) != 2 || got[0] != 3 || got[1] != 12 {
		t.Errorf("PIDs = %v, %v", got, err)
	}
}
