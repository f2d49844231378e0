package kubelet

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/errs"
)

func kubeadm(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/kubeadm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseKubeadmDefaults(t *testing.T) {
	c, err := Parse(strings.NewReader(kubeadm(t)), DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxPods != DefaultMaxPods || c.MaxPodsLine != 0 || c.IDsPerPod != DefaultIDsPerPod || c.IDsPerPodLine != 0 || c.FeatureGates != nil {
		t.Errorf("defaults: %+v", c)
	}
	if c.APIVersion != "kubelet.config.k8s.io/v1beta1" || len(c.Notes) != 0 {
		t.Errorf("apiVersion %q notes %q", c.APIVersion, c.Notes)
	}
}

func TestParseUserNamespaceFields(t *testing.T) {
	in := kubeadm(t) + `maxPods: 250
userNamespaces:
  idsPerPod: 131072
featureGates:
  UserNamespacesSupport: true
  KubeletInUserNamespace: off
  UserNamespacesPodSecurityStandards: yes
`
	c, err := Parse(strings.NewReader(in), DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	base := strings.Count(kubeadm(t), "\n")
	if c.MaxPods != 250 || c.MaxPodsLine != base+1 || c.IDsPerPod != 131072 || c.IDsPerPodLine != base+3 {
		t.Errorf("maxPods %d@%d idsPerPod %d@%d (base %d)", c.MaxPods, c.MaxPodsLine, c.IDsPerPod, c.IDsPerPodLine, base)
	}
	want := map[string]bool{"UserNamespacesSupport": true, "KubeletInUserNamespace": false, "UserNamespacesPodSecurityStandards": true}
	if !reflect.DeepEqual(c.FeatureGates, want) || c.FeatureGateLines["KubeletInUserNamespace"] != base+6 {
		t.Errorf("gates %v lines %v", c.FeatureGates, c.FeatureGateLines)
	}
}

func TestParseJSON(t *testing.T) {
	in := "{\n\t\"kind\": \"KubeletConfiguration\",\n\t\"apiVersion\": \"kubelet.config.k8s.io/v1beta1\",\n\t\"maxPods\": 64,\n\t\"featureGates\": {\"UserNamespacesSupport\": false},\n\t\"userNamespaces\": {\"idsPerPod\": 65536}\n}\n"
	c, err := Parse(strings.NewReader(in), "/etc/kubernetes/kubelet.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxPods != 64 || c.MaxPodsLine != 4 || c.FeatureGates["UserNamespacesSupport"] || c.FeatureGateLines["UserNamespacesSupport"] != 5 || c.IDsPerPodLine != 6 {
		t.Errorf("%+v", c)
	}
}

func TestParseDuplicateKeyLastWins(t *testing.T) {
	in := "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nmaxPods: 10\nmaxPods: 20\n"
	c, err := Parse(strings.NewReader(in), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxPods != 20 || c.MaxPodsLine != 4 || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], `c.yaml:4: "maxPods" is also set on line 3`) {
		t.Errorf("maxPods %d@%d notes %q", c.MaxPods, c.MaxPodsLine, c.Notes)
	}
}

func TestParseErrors(t *testing.T) {
	head := "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n"
	for _, tc := range []struct {
		name      string
		in        string
		line, col int
		msg       string
	}{
		{"binary", "\x7fELF\x02\x01\x01\x00", 1, 1, "control character U+007F"},
		{"invalid utf-8", head + "maxPods: 1\xff0\n", 3, 11, "invalid UTF-8 (byte 0xff)"},
		{"nul", head + "maxPods: 10\x00\n", 3, 12, "control character U+0000"},
		{"10 MB line", head + strings.Repeat("x", 10<<20), 0, 0, "larger than 4 MiB"},
		{"3 MB line", head + "a: b: " + strings.Repeat("x", 3<<20) + "\n", 3, 0, "mapping values are not allowed"},
		{"bad indentation", head + "featureGates:\n\tUserNamespacesSupport: true\n", 4, 0, "cannot start any token"},
		{"first-line error", "a: b: c\n", 1, 0, "mapping values are not allowed"},
		{"empty", "", 0, 0, "Object 'Kind' is missing"},
		{"comments only", "# nothing\n", 0, 0, "Object 'Kind' is missing"},
		{"a list", "- kind: KubeletConfiguration\n", 1, 1, "not a list"},
		{"no kind", "apiVersion: kubelet.config.k8s.io/v1beta1\nmaxPods: 1\n", 1, 0, "no `kind: KubeletConfiguration`"},
		{"wrong kind", "kind: KubeProxyConfiguration\napiVersion: kubeproxy.config.k8s.io/v1alpha1\n", 1, 7, `kind "KubeProxyConfiguration"`},
		{"wrong group", "kind: KubeletConfiguration\napiVersion: v1\n", 2, 13, `apiVersion "v1"`},
		{"maxPods quoted", head + "maxPods: \"110\"\n", 3, 10, `maxPods "110" (quoted: a string)`},
		{"maxPods negative", head + "maxPods: -1\n", 3, 10, "want a whole number of pods"},
		{"maxPods float", head + "maxPods: 1.5\n", 3, 10, "want a whole number of pods"},
		{"idsPerPod word", head + "userNamespaces:\n  idsPerPod: lots\n", 4, 14, `userNamespaces.idsPerPod "lots"`},
		{"userNamespaces scalar", head + "userNamespaces: 65536\n", 3, 17, "want an object"},
		{"gate quoted", head + "featureGates:\n  UserNamespacesSupport: \"true\"\n", 4, 26, "want true or false"},
		{"gates list", head + "featureGates:\n- UserNamespacesSupport\n", 4, 1, "featureGates: want a map"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in), "/var/lib/kubelet/config.yaml")
			var se *errs.Input
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if se.File != "/var/lib/kubelet/config.yaml" || se.Line != tc.line || se.Column != tc.col || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("got %d:%d %q, want %d:%d with %q", se.Line, se.Column, se.Msg, tc.line, tc.col, tc.msg)
			}
		})
	}
}

func TestParseNullsAndAliases(t *testing.T) {
	in := "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nfeatureGates:\nuserNamespaces:\n  idsPerPod: ~\npods: &p 30\nmaxPods: *p\n"
	c, err := Parse(strings.NewReader(in), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.FeatureGates != nil || c.IDsPerPod != DefaultIDsPerPod || c.MaxPods != 30 {
		t.Errorf("%+v", c)
	}
}

func TestParseFeatureGates(t *testing.T) {
	got, err := ParseFeatureGates("UserNamespacesSupport=true, KubeletInUserNamespace=false,")
	if err != nil || !reflect.DeepEqual(got, map[string]bool{"UserNamespacesSupport": true, "KubeletInUserNamespace": false}) {
		t.Errorf("%v %v", got, err)
	}
	for _, bad := range []string{"UserNamespacesSupport", "=true", "A=maybe"} {
		if _, err := ParseFeatureGates(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// C6: the CRI socket the kubelet talks to, when the file names one.
func TestParseRuntimeEndpoint(t *testing.T) {
	in := kubeadm(t) + "containerRuntimeEndpoint: unix:///run/crio/crio.sock\n"
	c, err := Parse(strings.NewReader(in), DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.ContainerRuntimeEndpoint != "unix:///run/crio/crio.sock" || c.ContainerRuntimeEndpointLine != strings.Count(kubeadm(t), "\n")+1 {
		t.Errorf("endpoint %q line %d", c.ContainerRuntimeEndpoint, c.ContainerRuntimeEndpointLine)
	}
	if _, err := Parse(strings.NewReader(kubeadm(t)+"containerRuntimeEndpoint: [a]\n"), DefaultPath); err == nil {
		t.Error("a list accepted as the endpoint")
	}
}

func TestParseDropInAPIVersion(t *testing.T) {
	const kindOnly = "kind: KubeletConfiguration\nmaxPods: 250\n"
	c, err := ParseDropIn(strings.NewReader(kindOnly), "50-pods.conf", false)
	if err != nil || c.MaxPods != 250 {
		t.Fatalf("before 1.32 (kind only): %v, %+v; want maxPods 250", err, c)
	}
	_, err = ParseDropIn(strings.NewReader(kindOnly), "50-pods.conf", true)
	var in *errs.Input
	if !errors.As(err, &in) || !strings.Contains(err.Error(), "no apiVersion") {
		t.Fatalf("from 1.32: %v; want a position error naming the missing apiVersion", err)
	}
	if _, err := ParseDropIn(strings.NewReader("maxPods: 250\n"), "50-pods.conf", false); err == nil {
		t.Fatal("a drop-in without kind: want an error on every version")
	}
}
