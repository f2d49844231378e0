package cmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// verifyHosts are the /proc trees verify's own tests use, recorded from real
// daemons (verify/testdata/e2e.sh), kept in fixtures/verify/.
const verifyHosts = "../fixtures/verify/"

func verifyMain(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func TestVerifyExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"verify", "--root", verifyHosts + "docker-remap", "--target", "docker", "--pid", "4962"}, 0, "VERIFIED for docker"},
		{[]string{"verify", "--root", verifyHosts + "docker-remap", "--target", "docker", "--container", "hostns"}, 1, "--userns=host"},
		{[]string{"verify", "--root", verifyHosts + "containerd", "--target", "containerd", "--pid", "6612"}, 0, "verify.containerd.rootfs"},
		{[]string{"verify", "--root", verifyHosts + "containerd", "--target", "kubernetes", "--pid", "6668"}, 1, "runs in the user namespace of its runtime"},
		{[]string{"verify", "--root", verifyHosts + "containerd", "--target", "docker", "--all"}, 2, ""},
		{[]string{"verify", "--root", verifyHosts + "containerd", "--target", "rootless"}, 2, ""},
		{[]string{"verify", "--root", verifyHosts + "containerd"}, 2, ""},
		{[]string{"verify", "--root", verifyHosts + "containerd", "--target", "containerd", "--output", "yaml"}, 2, ""},
		{[]string{"verify", "--root", verifyHosts + "containerd", "--target", "containerd", "--pid", "-3"}, 2, ""},
		{[]string{"verify", "--list"}, 0, "verify.kubernetes.volumes"},
		{[]string{"ns", "--root", verifyHosts + "containerd", "6612", "6668"}, 0, "4026532177 isolated"},
		{[]string{"ns", "--root", verifyHosts + "containerd", "99999"}, 2, "no such process"},
		{[]string{"ns"}, 2, ""},
		{[]string{"verify-child", "only-one-arg"}, 2, ""},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {

			code, out, errOut := verifyMain(c.args...)
			if code != c.code || !strings.Contains(out+errOut, c.out) {
				t.Errorf("usernsctl %s: exit %d (want %d), output lacks %q?\n%s%s", strings.Join(c.args, " "), code, c.code, c.out, out, errOut)
			}
		})
	}
}

func TestVerifyJSON(t *testing.T) {
	code, out, errOut := verifyMain("verify", "--root", verifyHosts+"docker-plain", "--target", "docker", "--container", "plain", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Schema  string
		Ready   bool
		Checks  []struct{ ID, Status, Message, Remedy string }
		Summary map[string]int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Schema != "usernsctl.verify/v1" || rep.Ready || rep.Summary["fail"] == 0 {
		t.Errorf("report: %+v", rep)
	}
	for _, c := range rep.Checks {
		if c.ID == "verify.docker.uid_map" && (c.Status != "fail" || !strings.Contains(c.Message, "user namespaces are not active")) {
			t.Errorf("uid_map: %+v", c)
		}
	}
}
