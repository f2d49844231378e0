package subid

import (
	"strings"
	"testing"
)

func TestParseGetsubids(t *testing.T) {
	got, err := ParseGetsubids(strings.NewReader("0: kubelet 65536 7208960\n"), "getsubids kubelet")
	if err != nil || len(got) != 1 || got[0] != (NewRange("kubelet", 65536, 7208960)) {
		t.Fatalf("got %v %v", got, err)
	}
	got, err = ParseGetsubids(strings.NewReader("0: alice 100000 65536\n1: alice 300000 65536\n"), "x")
	if err != nil || len(got) != 2 || got[1].Start != 300000 {
		t.Fatalf("two ranges: %v %v", got, err)
	}
	if got, err := ParseGetsubids(strings.NewReader(""), "x"); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{
		"Error fetching ranges\n",
		"0: kubelet 65536\n",
		"1: kubelet 65536 65536\n",
		"0: kubelet 65536 0\n",
		"0: kubelet 4294967295 2\n",
		"0: kubelet 1 18446744073709551615\n",
		"0: kubelet -1 5\n",
		"\x00\xff\xfe binary\n",
		strings.Repeat("x", 2<<20),
	} {
		if _, err := ParseGetsubids(strings.NewReader(bad), "getsubids kubelet"); err == nil || !strings.HasPrefix(err.Error(), "getsubids kubelet: ") {
			t.Errorf("%.40q: got %v", bad, err)
		}
	}
}
