package verify

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
)

// The tests below run the real usernsctl binary against real daemons. They
// need root and take minutes the first time (packages, a runc build), so
// they run only with USERNSCTL_E2E=1; CI runs the e2e suite separately.
// USERNSCTL_E2E_CASES picks cases of testdata/e2e.sh (default: docker-remap
// docker-remap:sid containerd: dockerd 20.10 and 28, containerd 2.1).

func e2eGate(t *testing.T) {
	t.Helper()
	if os.Getenv("USERNSCTL_E2E") != "1" {
		t.Skip("real-daemon test: set USERNSCTL_E2E=1 (root, Debian; starts dockerd and containerd)")
	}
	if os.Geteuid() != 0 {
		t.Skip("real-daemon test: needs root")
	}
}

// buildStatic builds usernsctl as shipped: static, the probe image holds
// nothing else.
func buildStatic(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "usernsctl")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func readReport(t *testing.T, out, name string) (*checks.Report, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, name+".json"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var rep checks.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		e, _ := os.ReadFile(filepath.Join(out, name+".err"))
		t.Fatalf("%s: %v\n%s\n%s", name, err, b, e)
	}
	rc, _ := os.ReadFile(filepath.Join(out, name+".rc"))
	return &rep, strings.TrimSpace(string(rc))
}

func file(t *testing.T, out, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestRealDaemons(t *testing.T) {
	e2eGate(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("real-daemon test: no unshare to isolate /etc and /run")
	}
	cases := strings.Fields(os.Getenv("USERNSCTL_E2E_CASES"))
	if len(cases) == 0 {
		cases = []string{"docker-remap", "docker-remap:sid", "containerd"}
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "e2e.sh"))
	install := append([]string{script, "install"}, cases...)
	if out, err := exec.Command("bash", install...).CombinedOutput(); err != nil {
		t.Skipf("real-daemon test: the e2e library could not install the daemons: %v\n%s", err, out)
	}
	bin := buildStatic(t)
	out := t.TempDir()
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "bash", script, "run", bin, out}, cases...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("e2e.sh run: %v\n%s", err, b)
	}
	for _, c := range cases {
		t.Run(c, func(t *testing.T) {
			dir := filepath.Join(out, c)
			switch {
			case strings.HasPrefix(c, "docker-remap"):
				checkDockerE2E(t, dir)
			case c == "containerd":
				checkContainerdE2E(t, dir)
			}
		})
	}
}

func checkDockerE2E(t *testing.T, out string) {
	rep, rc := readReport(t, out, "docker-remap")
	if rc != "0" || !rep.Ready {
		t.Errorf("remapped dockerd: exit %s, report %+v", rc, rep.Checks)
	}
	// The probe's map starts exactly at dockremap's range, as dockerd wrote
	// it into the private /etc/subuid ("dockremap:START:COUNT").
	f := strings.Split(file(t, out, "docker-remap.subuid"), ":")
	o, _ := rep.Find("verify.docker.uid_map")
	if len(f) != 3 || !strings.Contains(o.Message, "is `0 "+f[1]+" "+f[2]+"`") {
		t.Errorf("uid_map %q against subuid %q", o.Message, f)
	}
	for _, id := range []string{"verify.docker.probe_container", "verify.docker.bind_owner", "verify.docker.cleanup", "verify.docker.userns"} {
		if o, _ := rep.Find(id); o.Status != checks.Pass {
			t.Errorf("%s: %s %s", id, o.Status, o.Message)
		}
	}

	if _, err := os.Stat(filepath.Join(out, "docker-hostns.json")); err == nil {
		rep, rc = readReport(t, out, "docker-hostns")
		o, _ := rep.Find("verify.docker.uid_map")
		if rc != "1" || o.Status != checks.Fail || !strings.Contains(o.Message, identityMsg) || !strings.Contains(o.Message, "--userns=host") {
			t.Errorf("--userns=host container: exit %s, %s: %s", rc, o.Status, o.Message)
		}
	}

	// SIGINT mid-probe: exit 2, and nothing left behind.
	if rc := file(t, out, "docker-sigint.rc"); rc != "2" {
		t.Errorf("interrupted verify: exit %s: %s", rc, file(t, out, "docker-sigint.out"))
	}
	t.Logf("SIGINT caught the probe at stage %q", file(t, out, "docker-sigint.seen"))
	for _, l := range []string{"docker-remap.leftovers", "docker-plain.leftovers"} {
		if s := file(t, out, l); s != "" {
			t.Errorf("%s: verify left behind:\n%s", l, s)
		}
	}

	// Field case 25: the same daemon without remap.
	rep, rc = readReport(t, out, "docker-plain")
	o, _ = rep.Find("verify.docker.uid_map")
	if rc != "1" || o.Status != checks.Fail || !strings.Contains(o.Message, "`0 0 4294967295`") {
		t.Errorf("dockerd without remap: exit %s, uid_map %s: %s", rc, o.Status, o.Message)
	}
	if o, _ := rep.Find("verify.docker.userns_active"); o.Status != checks.Fail {
		t.Errorf("userns_active: %s %s", o.Status, o.Message)
	}
}

func checkContainerdE2E(t *testing.T, out string) {
	for _, name := range []string{"containerd-userns", "containerd-byid", "containerd-all"} {
		rep, rc := readReport(t, out, name)
		if rc != "0" || !rep.Ready {
			t.Errorf("%s: exit %s: %+v", name, rc, rep.Checks)
		}
		if o, _ := rep.Find("verify.containerd.uid_map"); !strings.Contains(o.Message, "`0 1310720 65536`") {
			t.Errorf("%s uid_map: %s", name, o.Message)
		}
	}
	rep, rc := readReport(t, out, "containerd-plain")
	o, _ := rep.Find("verify.containerd.userns")
	if rc != "1" || o.Status != checks.Fail {
		t.Errorf("container without a user namespace: exit %s, userns %s: %s", rc, o.Status, o.Message)
	}
	ns := file(t, out, "containerd-ns.txt")
	if !strings.Contains(ns, "isolated") || !strings.Contains(ns, "uid_map 0 1310720 65536") {
		t.Errorf("ns output:\n%s", ns)
	}
}

// TestDockerHost runs verify against the daemon DOCKER_HOST names (an e2e
// suite's, say), whatever its configuration: the probe must run and be
// removed, and its map must agree with what dockerd says about remap.
func TestDockerHost(t *testing.T) {
	e2eGate(t)
	if os.Getenv("DOCKER_HOST") == "" {
		t.Skip("no DOCKER_HOST: no running daemon named")
	}
	bin := buildStatic(t)
	b, err := exec.Command(bin, "verify", "--target", "docker", "-o", "json").Output()
	var rep checks.Report
	if jerr := json.Unmarshal(b, &rep); jerr != nil {
		t.Fatalf("verify: %v / %v\n%s", err, jerr, b)
	}
	if o, _ := rep.Find("verify.docker.daemon"); o.Status != checks.Pass {
		t.Skipf("DOCKER_HOST does not answer: %s", o.Message)
	}
	for _, id := range []string{"verify.docker.probe_container", "verify.docker.cleanup"} {
		if o, _ := rep.Find(id); o.Status != checks.Pass {
			t.Errorf("%s: %s %s", id, o.Status, o.Message)
		}
	}
	active, _ := rep.Find("verify.docker.userns_active")
	uid, _ := rep.Find("verify.docker.uid_map")
	if (active.Status == checks.Pass) != (uid.Status == checks.Pass) {
		t.Errorf("userns_active %s but uid_map %s: %s", active.Status, uid.Status, uid.Message)
	}
}
