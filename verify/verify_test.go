package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/hosttree"
	"github.com/usernsctl/usernsctl/internal/run"
)

// The trees under fixtures/verify were recorded from real daemons by
// testdata/e2e.sh (RECORD=dir): dockerd 20.10 with userns-remap default
// ("remapped" pid 4962; "hostns", started with --userns=host, pid 4736),
// the same dockerd without remap ("plain" pid 6027), and containerd 2.1
// with runc 1.2.6 (`ctr run --uidmap 0:1310720:65536` twice: "userns" pid
// 6612 and "twin" pid 6786; "plain" pid 6668 without a user namespace).
const (
	remapped   = 4962
	hostnsPID  = 4736
	dockerPlai = 6027
	ctrUserns  = 6612
	ctrTwin    = 6786
	ctrPlain   = 6668
)

// tree copies a recorded tree into a temporary directory, links kept as
// links, so that a test may edit it.
func tree(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "fixtures", "verify", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, out)
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func edit(t *testing.T, dir, p string, f func(string) string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	hosttree.Write(t, dir, p, f(string(b)))
}

func verifyAt(t *testing.T, env *checks.Env, opts Options) *checks.Report {
	t.Helper()
	rep, err := Run(context.Background(), env, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// want asserts the status of each named check and that its message holds
// every fragment.
func want(t *testing.T, rep *checks.Report, id string, status checks.Status, fragments ...string) checks.Outcome {
	t.Helper()
	o, ok := rep.Find(id)
	if !ok {
		t.Fatalf("no check %s in the report", id)
	}
	if o.Status != status {
		t.Errorf("%s: status %s, want %s: %s (fix: %s)", id, o.Status, status, o.Message, o.Remedy)
	}
	for _, f := range fragments {
		if !strings.Contains(o.Message+"\n"+o.Remedy, f) {
			t.Errorf("%s: message does not say %q:\n%s\nfix: %s", id, f, o.Message, o.Remedy)
		}
	}
	return o
}

func TestDockerRemappedContainer(t *testing.T) {
	env := checkstest.At(t, tree(t, "docker-remap"), checks.Docker)
	rep := verifyAt(t, env, Options{PIDs: []int{remapped}})
	want(t, rep, "verify.docker.daemon", checks.Pass, "20.10.24")
	want(t, rep, "verify.docker.userns_active", checks.Pass, "name=userns")
	want(t, rep, "verify.docker.data_root", checks.Pass, "/100000.100000", "/etc/subuid:1")
	want(t, rep, "verify.docker.probe_container", checks.Skip, "snapshot")
	want(t, rep, "verify.docker.userns", checks.Pass, "4026532250", "containerd-shim (pid 4940)")
	want(t, rep, "verify.docker.uid_map", checks.Pass, "`0 100000 65536`", "dockremap's range 100000-165535 (/etc/subuid:1)")
	want(t, rep, "verify.docker.gid_map", checks.Pass, "`0 100000 65536`", "/etc/subgid:1")
	want(t, rep, "verify.docker.bind_owner", checks.Skip)
	if !rep.Ready || rep.ExitCode() != 0 || rep.Schema != Schema {
		t.Errorf("ready %v exit %d schema %q", rep.Ready, rep.ExitCode(), rep.Schema)
	}
}

// A container started with --userns=host shows the identity map even on a
// remapped daemon (traps.md): verify names it and its cause.
func TestDockerUsernsHostContainer(t *testing.T) {
	env := checkstest.At(t, tree(t, "docker-remap"), checks.Docker)
	rep := verifyAt(t, env, Options{Containers: []string{"hostns"}})
	want(t, rep, "verify.docker.userns_active", checks.Pass)
	want(t, rep, "verify.docker.userns", checks.Fail, "container hostns (pid 4736 sh)", "--userns=host", "containerd-shim (pid 4708)")
	o := want(t, rep, "verify.docker.uid_map", checks.Fail, "`0 0 4294967295`", identityMsg, "--userns=host")
	if !strings.Contains(o.Remedy, "without --userns=host") {
		t.Errorf("remedy: %s", o.Remedy)
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit %d, want 1", rep.ExitCode())
	}
}

// Field case 25: a daemon without remap; the identity map fails whatever
// the files say (dockremap still has its range here).
func TestDockerIdentityMap(t *testing.T) {
	env := checkstest.At(t, tree(t, "docker-plain"), checks.Docker)
	rep := verifyAt(t, env, Options{Containers: []string{"plain"}})
	want(t, rep, "verify.docker.userns_active", checks.Fail, "no name=userns")
	want(t, rep, "verify.docker.data_root", checks.Skip)
	want(t, rep, "verify.docker.userns", checks.Fail, "pid 6027")
	for _, id := range []string{"verify.docker.uid_map", "verify.docker.gid_map"} {
		o := want(t, rep, id, checks.Fail, "`0 0 4294967295`", identityMsg)
		if !strings.Contains(o.Remedy, "usernsctl apply --target docker") {
			t.Errorf("%s remedy: %s", id, o.Remedy)
		}
	}
}

// The files changed after dockerd started: its maps and data root no
// longer match the remap user's ranges.
func TestDockerRangesDoNotMatch(t *testing.T) {
	dir := tree(t, "docker-remap")
	hosttree.Write(t, dir, "etc/subuid", "alice:100000:65536\ndockremap:165536:65536\n")
	rep := verifyAt(t, checkstest.At(t, dir, checks.Docker), Options{PIDs: []int{remapped}})
	want(t, rep, "verify.docker.uid_map", checks.Fail, "is `0 100000 65536`, want `0 165536 65536`", "/etc/subuid:2")
	want(t, rep, "verify.docker.gid_map", checks.Pass)
	want(t, rep, "verify.docker.data_root", checks.Fail, "not ", "165536.100000")
}

// An owner with two ranges: dockerd maps them in file order (older ones
// sorted them); either way container root is at a range start.
func TestDockerSeveralRanges(t *testing.T) {
	dir := tree(t, "docker-remap")
	hosttree.Write(t, dir, "etc/subuid", "dockremap:300000:65536\ndockremap:100000:65536\n")
	hosttree.Write(t, dir, "proc/4962/uid_map", "         0     100000      65536\n     65536     300000      65536\n")
	rep := verifyAt(t, checkstest.At(t, dir, checks.Docker), Options{PIDs: []int{remapped}})
	want(t, rep, "verify.docker.uid_map", checks.Pass, "sorts")
	hosttree.Write(t, dir, "proc/4962/uid_map", "         0     300000      65536\n     65536     100000      65536\n")
	rep = verifyAt(t, checkstest.At(t, dir, checks.Docker), Options{PIDs: []int{remapped}})
	want(t, rep, "verify.docker.uid_map", checks.Pass, "container root is host uid 300000")
}

// dockremap (uid 102) listed by name and by uid: dockerd before 28 maps
// only the uid's lines, 28 and later both in file order (R17); verify
// expects what the installed release maps, as subid.remap_user judges it.
func TestDockerNameAndUIDLinesByRelease(t *testing.T) {
	for _, tc := range []struct {
		version, uidMap string
		status          checks.Status
		fragment        string
	}{
		{"27.5.1", "         0     100000      65536\n", checks.Fail, "want `0 300000 65536`"},
		{"27.5.1", "         0     300000      65536\n", checks.Pass, "/etc/subuid:2"},
		{"28.5.2", "         0     100000      65536\n     65536     300000      65536\n", checks.Pass, "(/etc/subuid:1), 300000-365535 (/etc/subuid:2)"},
	} {
		t.Run(tc.version+"/"+string(tc.status), func(t *testing.T) {
			dir := tree(t, "docker-remap")
			hosttree.Write(t, dir, "etc/subuid", "dockremap:100000:65536\n102:300000:65536\n")
			edit(t, dir, ".usernsctl/commands.json", func(s string) string {
				return strings.Replace(s, "{", `{"dockerd --version": "Docker version `+tc.version+`, build 0\n",`, 1)
			})
			hosttree.Write(t, dir, "proc/4962/uid_map", tc.uidMap)
			rep := verifyAt(t, checkstest.At(t, dir, checks.Docker), Options{PIDs: []int{remapped}})
			want(t, rep, "verify.docker.uid_map", tc.status, tc.fragment)
		})
	}
}

// fakeProbe stands in for LiveProbe on a recorded tree: the "probe" is a
// recorded process whose cmdline is made the child's.
type fakeProbe struct {
	pid      int
	file     ProbeFile
	err      error
	cleaned  int
	cleanErr error
	cancel   context.CancelFunc
}

func (f *fakeProbe) start(ctx context.Context, env *checks.Env, req ProbeRequest) (*Probe, func(context.Context) error, error) {
	p := &Probe{Name: "usernsctl-verify-abc", Image: "usernsctl-verify:abc", Nonce: "abc", PID: f.pid, File: f.file, BindParent: "/tmp"}
	if f.cancel != nil {
		f.cancel()
		return p, f.cleanup, ctx.Err()
	}
	if req.UID != 100000 || req.GID != 100000 {
		return nil, nil, errors.New("the request should carry dockremap's first ids")
	}
	return p, f.cleanup, f.err
}

func (f *fakeProbe) cleanup(ctx context.Context) error {
	if ctx.Err() != nil {
		return errors.New("cleanup got a dead context")
	}
	f.cleaned++
	return f.cleanErr
}

func probeTree(t *testing.T) string {
	dir := tree(t, "docker-remap")
	hosttree.Write(t, dir, "proc/4962/cmdline", "/usernsctl\x00verify-child\x00/probe\x00abc\x00")
	return dir
}

func TestDockerProbe(t *testing.T) {
	dir := probeTree(t)
	f := &fakeProbe{pid: remapped, file: ProbeFile{Path: "/tmp/x/f", UID: 100000, GID: 100000}}
	rep := verifyAt(t, checkstest.At(t, dir, checks.Docker), Options{StartProbe: f.start})
	want(t, rep, "verify.docker.probe_container", checks.Pass, "usernsctl-verify-abc", "4962 sh ← 4940 containerd-shim")
	want(t, rep, "verify.docker.userns", checks.Pass, "probe container usernsctl-verify-abc (pid 4962)")
	want(t, rep, "verify.docker.uid_map", checks.Pass)
	want(t, rep, "verify.docker.bind_owner", checks.Pass, "100000:100000")
	want(t, rep, "verify.docker.cleanup", checks.Pass, "removed")
	if f.cleaned != 1 || !rep.Ready {
		t.Errorf("cleaned %d times, ready %v", f.cleaned, rep.Ready)
	}

	// The file is owned by host root: container root is host root.
	f = &fakeProbe{pid: remapped, file: ProbeFile{Path: "/tmp/x/f", UID: 0, GID: 0}}
	rep = verifyAt(t, checkstest.At(t, dir, checks.Docker), Options{StartProbe: f.start})
	want(t, rep, "verify.docker.bind_owner", checks.Fail, "uid 0 (uid_map maps container root to 100000)")

	// The pid docker inspect gave is not the probe: dockerd elsewhere.
	hosttree.Write(t, dir, "proc/4962/cmdline", "/bin/sh\x00")
	f = &fakeProbe{pid: remapped, file: ProbeFile{UID: 100000, GID: 100000}}
	rep = verifyAt(t, checkstest.At(t, dir, checks.Docker), Options{StartProbe: f.start})
	want(t, rep, "verify.docker.probe_container", checks.Fail, "not this probe")
}

func TestDockerProbeFailsAndIsCleanedUp(t *testing.T) {
	f := &fakeProbe{err: errors.New("`docker run`: OCI runtime create failed"), cleanErr: errors.New("`docker rmi`: busy")}
	rep := verifyAt(t, checkstest.At(t, probeTree(t), checks.Docker), Options{StartProbe: f.start})
	want(t, rep, "verify.docker.probe_container", checks.Fail, "OCI runtime create failed")
	want(t, rep, "verify.docker.uid_map", checks.Skip)
	want(t, rep, "verify.docker.cleanup", checks.Fail, "busy")
	if f.cleaned != 1 {
		t.Errorf("cleaned %d times", f.cleaned)
	}
}

// An interrupt mid-probe still cleans up, on a live context, and Run
// reports the interruption instead of a verdict.
func TestDockerProbeInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeProbe{cancel: cancel}
	_, err := Run(ctx, checkstest.At(t, probeTree(t), checks.Docker), Options{StartProbe: f.start})
	if !errors.Is(err, ErrInterrupted) || f.cleaned != 1 {
		t.Fatalf("err %v, cleaned %d", err, f.cleaned)
	}
}

func TestDockerNotAnswering(t *testing.T) {
	dir := tree(t, "docker-remap")
	hosttree.Write(t, dir, ".usernsctl/commands.json", `{"docker info --format {{json .}}": {"stdout": "{\"ServerVersion\":\"\",\"ServerErrors\":[\"Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\"]}\n", "exit": 1}}`)
	f := &fakeProbe{pid: remapped}
	rep := verifyAt(t, checkstest.At(t, dir, checks.Docker), Options{StartProbe: f.start})
	want(t, rep, "verify.docker.daemon", checks.Fail, "Cannot connect")
	want(t, rep, "verify.docker.probe_container", checks.Skip, "does not answer")
	if f.cleaned != 0 {
		t.Error("a probe ran against a daemon that does not answer")
	}

	rep = verifyAt(t, checkstest.At(t, tree(t, "docker-remap"), checks.Docker), Options{DockerHost: "tcp://10.0.0.5:2376", StartProbe: f.start})
	want(t, rep, "verify.docker.daemon", checks.Fail, "DOCKER_HOST is tcp://10.0.0.5:2376")
	want(t, rep, "verify.docker.probe_container", checks.Skip, "not on this host")
}

func TestContainerdUsernsContainer(t *testing.T) {
	env := checkstest.At(t, tree(t, "containerd"), checks.Containerd)
	rep := verifyAt(t, env, Options{PIDs: []int{ctrUserns}})
	want(t, rep, "verify.containerd.runtime", checks.Pass, "pid 6490")
	want(t, rep, "verify.containerd.userns", checks.Pass, "4026532177", "containerd-shim (pid 6589)")
	want(t, rep, "verify.containerd.uid_map", checks.Pass, "`0 1310720 65536` lies inside the kubelet's default", `no "kubelet" user`)
	want(t, rep, "verify.containerd.pods", checks.Pass, "1 user namespace")
	// ctr run --uidmap chowns a copy of the snapshot.
	want(t, rep, "verify.containerd.rootfs", checks.Warn, chowned, "snapshots/2/fs")
	if rep.ExitCode() != 0 {
		t.Errorf("exit %d", rep.ExitCode())
	}
}

// Field case 18: a container in its runtime's user namespace (a pod whose
// hostUsers: false was ignored) runs as host root.
func TestPodInRuntimeNamespace(t *testing.T) {
	env := checkstest.At(t, tree(t, "containerd"), checks.Kubernetes)
	rep := verifyAt(t, env, Options{PIDs: []int{ctrPlain}})
	o := want(t, rep, "verify.kubernetes.userns", checks.Fail, "pid 6668 sleep runs in the user namespace of its runtime containerd-shim (pid 6644)")
	if !strings.Contains(o.Remedy, "hostUsers: false") || !strings.Contains(o.Remedy, "containerd ≥2.0") {
		t.Errorf("remedy: %s", o.Remedy)
	}
	want(t, rep, "verify.kubernetes.uid_map", checks.Fail, identityMsg)
	want(t, rep, "verify.kubernetes.pods", checks.Skip)
	want(t, rep, "verify.kubernetes.volumes", checks.Skip)
}

func TestTwoPodsOverlapping(t *testing.T) {
	env := checkstest.At(t, tree(t, "containerd"), checks.Containerd)
	rep := verifyAt(t, env, Options{PIDs: []int{ctrUserns, ctrTwin}})
	want(t, rep, "verify.containerd.pods", checks.Fail,
		"user namespace 4026532177 (pid 6612) and user namespace 4026532324 (pid 6786) share host uids 1310720-1376255")
	want(t, rep, "verify.containerd.uid_map", checks.Pass)
}

// --all finds the shims' descendants in namespaces of their own, and only
// counts the one in its runtime's.
func TestAll(t *testing.T) {
	env := checkstest.At(t, tree(t, "containerd"), checks.Containerd)
	rep := verifyAt(t, env, Options{All: true})
	o := want(t, rep, "verify.containerd.containers", checks.Pass, "verifying 2 processes", "pid 6612 sleep (--all)", "pid 6786 sleep (--all)", "1 other container process")
	if o.Evidence["container_processes_in_runtime_userns"] != 1 {
		t.Errorf("evidence: %v", o.Evidence)
	}
	want(t, rep, "verify.containerd.pods", checks.Fail, "share host uids")

	// With nothing in a namespace of its own, --all fails and says how to
	// make one.
	dir := tree(t, "containerd")
	for _, pid := range []int{ctrUserns, ctrTwin} {
		os.Remove(filepath.Join(dir, "proc", strconv.Itoa(pid), "ns", "user"))
		hosttree.Write(t, dir, filepath.Join("proc", strconv.Itoa(pid), "ns", "user"), hosttree.Link+"user:[4026531837]")
	}
	rep = verifyAt(t, checkstest.At(t, dir, checks.Kubernetes), Options{})
	o = want(t, rep, "verify.kubernetes.containers", checks.Fail, "no container process runs in a user namespace of its own", "3 container processes run")
	if !strings.Contains(o.Remedy, "hostUsers") {
		t.Errorf("remedy: %s", o.Remedy)
	}
	want(t, rep, "verify.kubernetes.userns", checks.Skip)
}

func TestContainerByID(t *testing.T) {
	env := checkstest.At(t, tree(t, "containerd"), checks.Containerd)
	rep := verifyAt(t, env, Options{Containers: []string{"userns", "gone"}, CtrNamespaces: []string{"usernsctl-e2e"}})
	want(t, rep, "verify.containerd.containers", checks.Fail, "container userns (pid 6612 sleep) (ctr -n usernsctl-e2e task ls)", `no running container "gone"`)
	want(t, rep, "verify.containerd.userns", checks.Pass, "container userns")
}

// Ranges that do not match: the kubelet's range from getsubids, or
// --user's lines, must hold the maps.
func TestKubeletRange(t *testing.T) {
	dir := tree(t, "containerd")
	edit(t, dir, "etc/passwd", func(s string) string { return s + "kubelet:x:990:990::/nonexistent:/usr/sbin/nologin\n" })
	// The recording and the files agree, as in a real snapshot.
	hosttree.Write(t, dir, "etc/subuid", "kubelet:1310720:7208960\n")
	hosttree.Write(t, dir, "etc/subgid", "kubelet:1310720:7208960\n")
	hosttree.Write(t, dir, ".usernsctl/commands.json", `{
  "getsubids kubelet": "0: kubelet 1310720 7208960\n",
  "getsubids -g kubelet": "0: kubelet 1310720 7208960\n"
}`)
	rep := verifyAt(t, checkstest.At(t, dir, checks.Kubernetes), Options{PIDs: []int{ctrUserns}})
	want(t, rep, "verify.kubernetes.uid_map", checks.Pass, "kubelet's range 1310720-8519679 (`getsubids kubelet`)")

	hosttree.Write(t, dir, "etc/subuid", "kubelet:2621440:7208960\n")
	hosttree.Write(t, dir, "etc/subgid", "kubelet:2621440:7208960\n")
	hosttree.Write(t, dir, ".usernsctl/commands.json", `{
  "getsubids kubelet": "0: kubelet 2621440 7208960\n",
  "getsubids -g kubelet": "0: kubelet 2621440 7208960\n"
}`)
	rep = verifyAt(t, checkstest.At(t, dir, checks.Kubernetes), Options{PIDs: []int{ctrUserns}})
	want(t, rep, "verify.kubernetes.uid_map", checks.Fail, "`0 1310720 65536` lies outside kubelet's range 2621440-9830399")

	// A kubelet user without getsubids: the kubelet does not start, so
	// there is no range a container could be judged against.
	hosttree.Write(t, dir, ".usernsctl/commands.json", `{}`)
	rep = verifyAt(t, checkstest.At(t, dir, checks.Kubernetes), Options{PIDs: []int{ctrUserns}})
	want(t, rep, "verify.kubernetes.uid_map", checks.Fail, "the kubelet does not start", "getsubids")

	// --user names another owner.
	hosttree.Write(t, dir, "etc/subuid", "alice:200000:65536\n")
	hosttree.Write(t, dir, "etc/subgid", "alice:1310720:65536\n")
	rep = verifyAt(t, checkstest.At(t, dir, checks.Containerd), Options{PIDs: []int{ctrUserns}, User: "alice"})
	want(t, rep, "verify.containerd.uid_map", checks.Fail, "lies outside alice's range 200000-265535 (/etc/subuid:1)")
	want(t, rep, "verify.containerd.gid_map", checks.Pass, "alice's range 1310720-1376255 (/etc/subgid:1)")
}

// idmapped lower layers (containerd 2.x on an idmap-capable host) against
// the chowned copy the recorded container has.
func TestRootfsIdmapped(t *testing.T) {
	dir := tree(t, "containerd")
	mi := filepath.Join("proc", strconv.Itoa(ctrUserns), "mountinfo")
	edit(t, dir, mi, func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, " / / ") && strings.Contains(l, "lowerdir=") {
				l = l[:strings.Index(l, "lowerdir=")] + "lowerdir=/var/lib/containerd/tmpmounts/ovl-idmapped1234/0:/var/lib/containerd/tmpmounts/ovl-idmapped1234/1,upperdir=/u,workdir=/w"
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	})
	rep := verifyAt(t, checkstest.At(t, dir, checks.Containerd), Options{PIDs: []int{ctrUserns}})
	want(t, rep, "verify.containerd.rootfs", checks.Pass, lowerIdmapped, "2 of 2 lower layers")
}

func TestKubernetesVolumes(t *testing.T) {
	dir := tree(t, "containerd")
	mi := filepath.Join("proc", strconv.Itoa(ctrUserns), "mountinfo")
	secret := "900 96 0:90 / /var/run/secrets/kubernetes.io/serviceaccount ro,relatime - tmpfs tmpfs rw,size=10240k\n"
	empty := "901 96 8:1 /var/lib/kubelet/pods/0b5e/volumes/kubernetes.io~empty-dir/cache /cache rw,relatime,idmapped - ext4 /dev/sda1 rw\n"
	edit(t, dir, mi, func(s string) string { return s + secret + empty })
	rep := verifyAt(t, checkstest.At(t, dir, checks.Kubernetes), Options{PIDs: []int{ctrUserns}})
	want(t, rep, "verify.kubernetes.volumes", checks.Fail, "1 volume mount without the idmapped option: /var/run/secrets/kubernetes.io/serviceaccount", "runc ≥1.2")

	edit(t, dir, mi, func(s string) string {
		return strings.Replace(s, "/serviceaccount ro,relatime -", "/serviceaccount ro,relatime,idmapped -", 1)
	})
	rep = verifyAt(t, checkstest.At(t, dir, checks.Kubernetes), Options{PIDs: []int{ctrUserns}})
	want(t, rep, "verify.kubernetes.volumes", checks.Pass, "2 volume mounts idmapped")
}

// usernsctl itself runs in a user namespace (a kind node): a container
// that shares the runtime's namespace reads that namespace's own map,
// which looks remapped. Only the inode comparison catches it.
func TestNestedNamespace(t *testing.T) {
	dir := tree(t, "containerd")
	nested := "         0     100000      65536\n"
	for _, pid := range []string{"self", "1", "6490", "6644", "6668"} {
		hosttree.Write(t, dir, "proc/"+pid+"/uid_map", nested)
		hosttree.Write(t, dir, "proc/"+pid+"/gid_map", nested)
	}
	rep := verifyAt(t, checkstest.At(t, dir, checks.Containerd), Options{PIDs: []int{ctrPlain}})
	want(t, rep, "verify.containerd.userns", checks.Fail, "pid 6668")
	want(t, rep, "verify.containerd.uid_map", checks.Fail, "reads `0 100000 65536`, but the process shares the user namespace of its runtime", "usernsctl itself runs in a user namespace")
}

func TestUnreadableMap(t *testing.T) {
	dir := tree(t, "containerd")
	hosttree.Write(t, dir, "proc/6612/uid_map", "0 1310720 65536\n\x00\x01junk\xff\n")
	os.Remove(filepath.Join(dir, "proc/6612/gid_map"))
	hosttree.Write(t, dir, "proc/6612/gid_map", hosttree.Dir)
	rep := verifyAt(t, checkstest.At(t, dir, checks.Containerd), Options{PIDs: []int{ctrUserns}})
	want(t, rep, "verify.containerd.uid_map", checks.Fail, "/proc/6612/uid_map:2:1: NUL byte")
	want(t, rep, "verify.containerd.gid_map", checks.Fail, "/proc/6612/gid_map", "is a directory")
	want(t, rep, "verify.containerd.pods", checks.Fail, "cannot be read")
}

func TestListNamesEveryCheck(t *testing.T) {
	l := List()
	for _, id := range []string{"verify.docker.uid_map", "verify.docker.cleanup", "verify.containerd.rootfs", "verify.kubernetes.volumes"} {
		if !strings.Contains(l, id) {
			t.Errorf("List lacks %s:\n%s", id, l)
		}
	}
	if strings.Contains(l, "verify.containerd.volumes") {
		t.Error("volumes is a Kubernetes check only")
	}
}

// BenchmarkAll is `verify --all` on a recorded node: a /proc scan, every
// candidate observed, every check judged.
func BenchmarkAll(b *testing.B) {
	h, err := host.At(filepath.Join("..", "fixtures", "verify", "containerd"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		env := &checks.Env{Host: h, Run: run.None{}, Target: checks.Kubernetes}
		if _, err := Run(context.Background(), env, Options{All: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// podCommands are crictl's answers for two pods on the recorded containerd
// host: "default/userns" (sandbox 6612, container 6612: one process serves
// as both) and "default/split" (sandbox 6612, container 6786 in another
// user namespace), "default/hostns" (sandbox 6668, host user namespace).
func podCommands(t *testing.T, dir string) {
	t.Helper()
	pods := func(name, id string) string {
		return `{"items":[{"id":"` + id + `","state":"SANDBOX_READY","metadata":{"name":"` + name + `","namespace":"default"}},` +
			`{"id":"old` + id + `","state":"SANDBOX_NOTREADY","metadata":{"name":"` + name + `","namespace":"default"}}]}`
	}
	ps := func(ids ...string) string {
		var cs []string
		for _, id := range ids {
			cs = append(cs, `{"id":"`+id+`","state":"CONTAINER_RUNNING","metadata":{"name":"app-`+id+`"}}`)
		}
		return `{"containers":[` + strings.Join(cs, ",") + `]}`
	}
	pid := func(n int) string { return fmt.Sprintf(`{"info":{"pid":%d}}`, n) }
	cmds := map[string]string{
		"crictl pods --namespace default --name userns -o json": pods("userns", "pod1"),
		"crictl pods --namespace default --name split -o json":  pods("split", "pod2"),
		"crictl pods --namespace default --name hostns -o json": pods("hostns", "pod3"),
		"crictl pods --namespace default --name gone -o json":   `{"items":[]}`,
		"crictl inspectp pod1":                                  pid(ctrUserns), "crictl inspectp pod2": pid(ctrUserns), "crictl inspectp pod3": pid(ctrPlain),
		"crictl ps --pod pod1 -o json": ps("c1"), "crictl ps --pod pod2 -o json": ps("c2"), "crictl ps --pod pod3 -o json": ps("c3"),
		"crictl inspect c1": pid(ctrUserns), "crictl inspect c2": pid(ctrTwin), "crictl inspect c3": pid(ctrPlain),
	}
	b, err := json.Marshal(cmds)
	if err != nil {
		t.Fatal(err)
	}
	edit(t, dir, ".usernsctl/commands.json", func(old string) string {
		var m map[string]string
		json.Unmarshal([]byte(old), &m)
		var add map[string]string
		json.Unmarshal(b, &add)
		for k, v := range add {
			m[k] = v
		}
		out, _ := json.Marshal(m)
		return string(out)
	})
}

func TestPodByName(t *testing.T) {
	dir := tree(t, "containerd")
	podCommands(t, dir)
	env := checkstest.At(t, dir, checks.Kubernetes)
	rep := verifyAt(t, env, Options{Pods: []string{"default/userns"}})
	o := want(t, rep, "verify.kubernetes.pod", checks.Pass, "pod default/userns (sandbox pid 6612): user namespace 4026532177", "uid_map `0 1310720 65536`", "block 19 of 65536 ids")
	if ps, _ := o.Evidence["pods"].([]map[string]any); len(ps) != 1 || ps[0]["sandbox"] != "pod1" {
		t.Errorf("evidence %v", o.Evidence)
	}
	if rep.Ready != true {
		t.Errorf("a pod with hostUsers: false does not verify:\n%s", rep.Verdict())
	}

	rep = verifyAt(t, env, Options{Pods: []string{"default/split"}})
	want(t, rep, "verify.kubernetes.pod", checks.Fail, "does not share the sandbox's user")

	rep = verifyAt(t, env, Options{Pods: []string{"default/hostns"}})
	want(t, rep, "verify.kubernetes.pod", checks.Fail, "hostUsers: false is not set")
	if rep.Ready {
		t.Error("a pod in the host user namespace verifies")
	}

	rep = verifyAt(t, env, Options{Pods: []string{"default/gone"}})
	want(t, rep, "verify.kubernetes.pod", checks.Fail, "no ready pod default/gone")
}

// ns --pod shows a pod's sandbox and containers side by side.
func TestNSPod(t *testing.T) {
	dir := tree(t, "containerd")
	podCommands(t, dir)
	env := checkstest.At(t, dir, checks.Kubernetes)
	rep := NS(context.Background(), env, nil, []string{"default/split", "default/gone"}, nil)
	if len(rep.Processes) != 3 || rep.Processes[0].Arg != "pod default/split sandbox" || rep.Processes[1].PID != ctrTwin || rep.Processes[2].Error == "" {
		t.Fatalf("%+v", rep.Processes)
	}
	var b bytes.Buffer
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "pod default/split") {
		t.Errorf("%s", b.String())
	}
}
