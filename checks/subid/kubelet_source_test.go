package subid

import (
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/checkstest"
)

// Field case 11: with `subid: sss` the kubelet's range comes from the
// directory through getsubids, so rewriting /etc/subuid and /etc/subgid
// (what apply does) changes nothing; the remedy must say where to act.
func TestKubeletRangeFromDirectory(t *testing.T) {
	nss := "passwd: sss files systemd\ngroup: sss files systemd\nsubid: sss\n"
	ipa := "0: kubelet 2147549184 65536\n"
	cases := []struct {
		name     string
		commands string
		msg      []string
		remedy   []string
	}{
		{"too few ids from IPA", getsubids(ipa, ipa),
			[]string{"kubelet user assigned IDs are not enough to support 110 pods", "getsubids asks libsubid_sss.so per /etc/nsswitch.conf:3"},
			[]string{"in the directory libsubid_sss.so serves (/etc/nsswitch.conf:3 `subid: sss`)", "count ≥ 7208960", "set `subid: files` in /etc/nsswitch.conf"}},
		{"no ranges in the directory", getsubids("none", "none"),
			[]string{"Error fetching ranges", "getsubids asks libsubid_sss.so"},
			[]string{"in the directory libsubid_sss.so serves"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {

			files := with(tree{"/etc/subuid": "", "/etc/subgid": "", "/etc/nsswitch.conf": nss})
			files["/etc/passwd"] += kubeletPW
			r := run1(t, "subid.kubelet", checkstest.Env(t, checks.Kubernetes, files, c.commands, nil))
			expect(t, c.name, r, checks.Fail, c.msg, c.remedy...)
			if strings.Contains(r.Remedy, "delete them") {
				t.Errorf("%s: remedy edits files getsubids does not read: %s", c.name, r.Remedy)
			}
		})
	}
}
