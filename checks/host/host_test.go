package host

import (
	"os"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

func recorded(t *testing.T, probes string) checks.Result {
	t.Helper()
	pr, err := probe.ParseRecorded(strings.NewReader(probes), probe.File)
	if err != nil {
		t.Fatal(err)
	}
	return checkstest.Run(t, Checkers(), "host.in_userns", checkstest.Env(t, checks.Kubernetes, nil, "", pr))
}

func TestInUserNS(t *testing.T) {
	checkstest.Expect(t, recorded(t, `{"self-userns": {"ran": true, "ok": true, "detail": {"uid_map": "0 100000 65536"}}}`),
		checks.Warn, "0 100000 65536", "relative to that namespace")
	checkstest.Expect(t, recorded(t, `{"self-userns": {"ran": true, "ok": false, "detail": {"uid_map": "0 0 4294967295"}}}`),
		checks.Pass, "initial user namespace")
	checkstest.Expect(t, recorded(t, `{}`), checks.Skip, "did not run")
}

// The live probe answers on any host, nested or not.
func TestInUserNSLive(t *testing.T) {
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("live probes need root; running as uid %d", uid)
	}
	l := probe.NewLive(host.Live())
	defer l.Close()
	env := &checks.Env{Host: host.Live(), Run: run.NewMemo(&run.Exec{}), Probes: l, Target: checks.Kubernetes}
	r := checkstest.Run(t, Checkers(), "host.in_userns", env)
	if r.Status == checks.Skip || r.Status == checks.Fail {
		t.Errorf("%s: %s", r.Status, r.Message)
	}
}
