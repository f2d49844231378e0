package facts

import (
	"os"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks/checkstest"
)

func TestPersistedSysctlsDirectoryRules(t *testing.T) {
	env := checkstest.Env(t, "", map[string]string{
		// merged /usr: /lib is a link, so /lib/sysctl.d repeats /usr/lib/sysctl.d.
		"/lib":                               "-> usr/lib",
		"/usr/lib/sysctl.d/50-default.conf":  "kernel.sysrq = 16\n",
		"/usr/lib/sysctl.d/60-cis.conf":      "user.max_user_namespaces = 0\n",
		"/usr/lib/sysctl.d/70-vendor.conf":   "user.max_user_namespaces = 5\n",
		"/usr/lib/sysctl.d/README":           "user.max_user_namespaces = 1\n",
		"/etc/sysctl.d/60-cis.conf":          "-> /nonexistent", // dangling: masks
		"/etc/sysctl.d/70-vendor.conf":       "<dir>",           // a directory does not mask
		"/etc/sysctl.d/.80-hidden.conf":      "user.max_user_namespaces = 2\n",
		"/run/sysctl.d/65-run.conf":          "user/max_user_namespaces=3\n",
		"/usr/local/lib/sysctl.d/x.conf.bak": "user.max_user_namespaces = 4\n",
	}, "", nil)
	s := SysctlsOf(env)
	var files []string
	for _, f := range s.Set.Files {
		files = append(files, f.Name)
	}
	if got := strings.Join(files, " "); got != "/usr/lib/sysctl.d/50-default.conf /run/sysctl.d/65-run.conf /usr/lib/sysctl.d/70-vendor.conf" {
		t.Errorf("files applied: %s", got)
	}
	if got := strings.Join(s.Masked, " "); got != "/etc/sysctl.d/60-cis.conf" {
		t.Errorf("masked: %s", got)
	}
	r := s.Lookup("user.max_user_namespaces")
	if r.Final == nil || r.Final.Where() != "/usr/lib/sysctl.d/70-vendor.conf:1" || len(r.Mentions) != 2 {
		t.Errorf("lookup: %+v", r)
	}
	if len(s.Problems) != 0 {
		t.Errorf("problems: %v", s.Problems)
	}
	if SysctlsOf(env) != s {
		t.Error("not memoized")
	}
}

func TestKernelConfigFirstFoundWins(t *testing.T) {
	const rel = "6.8.0-45-generic"
	env := checkstest.Env(t, "", map[string]string{
		"/proc/sys/kernel/osrelease":                 rel + "\n",
		"/usr/lib/modules/" + rel + "/config":        "CONFIG_USER_NS=y\n",
		"/usr/src/linux-headers-" + rel + "/.config": "# CONFIG_USER_NS is not set\n",
	}, "", nil)
	kc := KernelConfigOf(env)
	if kc.Path != "/usr/lib/modules/"+rel+"/config" || kc.Err != nil || kc.Config == nil || len(kc.Searched) != 9 {
		t.Fatalf("%+v", kc)
	}
	if KernelConfigOf(env) != kc {
		t.Error("not memoized")
	}

	// A broken first candidate is reported, not skipped.
	env = checkstest.Env(t, "", map[string]string{
		"/proc/sys/kernel/osrelease":          rel + "\n",
		"/boot/config-" + rel:                 "not a config\n",
		"/usr/lib/modules/" + rel + "/config": "CONFIG_USER_NS=y\n",
	}, "", nil)
	kc = KernelConfigOf(env)
	if kc.Path != "/boot/config-"+rel || kc.Err == nil || !strings.Contains(kc.Err.Error(), "/boot/config-"+rel+":1:1") {
		t.Fatalf("%+v", kc)
	}
}

func TestLiveSysctl(t *testing.T) {
	env := checkstest.Env(t, "", map[string]string{"/proc/sys/user/max_user_namespaces": "63432\n"}, "", nil)
	for _, key := range []string{"user.max_user_namespaces", "user/max_user_namespaces"} {
		if l := LiveSysctlOf(env, key); l.Value != "63432" || l.Err != nil {
			t.Errorf("LiveSysctlOf(%s) = %q, %v", key, l.Value, l.Err)
		}
	}
	if err := LiveSysctlOf(env, "kernel.unprivileged_userns_clone").Err; !os.IsNotExist(err) {
		t.Errorf("absent knob: %v", err)
	}
}
