package runtime

import (
	"context"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
)

func TestRuncGate(t *testing.T) {
	runc := func(v string) map[string]any {
		return map[string]any{"runc --version": "runc version " + v + "\nspec: 1.0.2-dev\n"}
	}
	for _, tc := range []struct {
		name   string
		target checks.Target
		kube   string
		cmds   map[string]any
		status checks.Status
		want   string
	}{
		// dockerd's userns-remap needs nothing from runc beyond the namespace.
		{"docker, runc 1.0", checks.Docker, "", runc("1.0.0-rc93"), checks.Pass, "all dockerd's userns-remap needs from it"},
		{"containerd, runc 1.0", checks.Containerd, "", runc("1.0.0-rc93"), checks.Warn, "idmapped mounts need runc 1.2"},
		{"kubernetes 1.30, runc 1.1", checks.Kubernetes, "1.30", runc("1.1.12"), checks.Fail,
			"runc 1.1.12 is older than 1.2: Kubernetes 1.30.0 needs idmapped mounts; an older runtime silently drops idmap mount requests"},
		{"kubernetes 1.26, runc 1.0", checks.Kubernetes, "1.26", runc("1.0.3"), checks.Fail, "runc 1.0.3 is older than 1.1: Kubernetes 1.26.0 needs it"},
		{"runc 1.2.0 anywhere", checks.Docker, "", runc("1.2.0"), checks.Fail, "regressions fixed in 1.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := featuresEnv(t, tc.target, tc.kube, tc.cmds)
			r := checkRunc(context.Background(), env)
			if r.Status != tc.status || !strings.Contains(r.Message, tc.want) {
				t.Fatalf("%s: %s, want %s containing %q", tc.name, r.Status, tc.status, tc.want)
			}
			if r.Status != checks.Pass && r.Remedy == "" {
				t.Error("no remedy")
			}
		})
	}
}
