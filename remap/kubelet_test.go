package remap

import (
	"fmt"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/ids"
)

func kr(where string, rs ...ids.Range) KubeletRange {
	k := KubeletRange{Ranges: rs}
	for range rs {
		k.Where = append(k.Where, where)
	}
	return k
}

func rules(vs []Violation) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return strings.Join(out, ",")
}

func TestKubeletRules(t *testing.T) {
	docs := ids.Range{Start: 65536, Count: 7208960} // the Kubernetes docs' example
	cases := []struct {
		name      string
		uid, gid  KubeletRange
		maxPods   int
		idsPerPod uint64
		rules     string
		kubelet   string // one expected kubelet text
	}{
		{"docs example", kr("/etc/subuid:1", docs), kr("/etc/subgid:1", docs), 110, 65536, "", ""},
		{"field case 21: unaligned start and too small", kr("/etc/subuid:1", ids.Range{Start: 100000, Count: 65536}), kr("/etc/subgid:1", ids.Range{Start: 100000, Count: 65536}), 110, 65536,
			"aligned-start,count-pods", "kubelet user assigned ID 100000 is not a multiple of 65536"},
		{"too small for 110 pods", kr("a", ids.Range{Start: 65536, Count: 65536}), kr("b", ids.Range{Start: 65536, Count: 65536}), 110, 65536,
			"count-pods", "kubelet user assigned IDs are not enough to support 110 pods"},
		{"mismatch", kr("/etc/subuid:3", docs), kr("/etc/subgid:3", ids.Range{Start: 131072, Count: 7208960}), 110, 65536,
			"identical", `mismatched subuids and subgids for user "kubelet"`},
		{"no subgid line", kr("a", docs), KubeletRange{}, 110, 65536,
			"one-line", `error retrieving additional gids for user "kubelet"`},
		{"two subuid lines", kr("/etc/subuid:1", docs, ids.Range{Start: 7274496, Count: 65536}), kr("b", docs), 110, 65536,
			"one-line", `error parsing line "0: kubelet 65536 7208960\n1: kubelet 7274496 65536\n": it must contain only one line`},
		{"start 0", kr("a", ids.Range{Start: 0, Count: 7208960}), kr("b", ids.Range{Start: 0, Count: 7208960}), 110, 65536,
			"start-min", "kubelet user assigned ID 0 must be greater or equal to 65536"},
		{"unaligned count", kr("a", ids.Range{Start: 65536, Count: 7208961}), kr("b", ids.Range{Start: 65536, Count: 7208961}), 110, 65536,
			"aligned-count", "kubelet user assigned IDs length 7208961 is not a multiple of 65536"},
		{"past 2^32", kr("a", ids.Range{Start: 1 << 31, Count: 1 << 31}), kr("b", ids.Range{Start: 1 << 31, Count: 1 << 31}), 110, 65536, "", ""},
		{"past 2^32 by one block", kr("a", ids.Range{Start: 1<<31 + 65536, Count: 1 << 31}), kr("b", ids.Range{Start: 1<<31 + 65536, Count: 1 << 31}), 110, 65536, "below-2^32", ""},
		{"idsPerPod not a multiple", kr("a", docs), kr("b", docs), 110, 100000, "ids-per-pod", "kubelet user namespace length 100000 is not a multiple of 65536"},
		{"idsPerPod 131072 (1.35+)", kr("a", ids.Range{Start: 131072, Count: 131072 * 110}), kr("b", ids.Range{Start: 131072, Count: 131072 * 110}), 110, 131072, "", ""},
		{"idsPerPod 131072, docs range", kr("a", docs), kr("b", docs), 110, 131072,
			"aligned-start,start-min,count-pods", "kubelet user assigned ID 65536 is not a multiple of 131072"},
		{"maxPods 250", kr("a", docs), kr("b", docs), 250, 65536, "count-pods", "not enough to support 250 pods"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {

			vs := CheckKubelet(c.uid, c.gid, c.maxPods, c.idsPerPod)
			if got := rules(vs); got != c.rules {
				t.Errorf("%s: rules %q, want %q (%v)", c.name, got, c.rules, vs)
				return
			}
			if c.kubelet == "" {
				return
			}
			found := false
			for _, v := range vs {
				found = found || strings.Contains(v.Kubelet, c.kubelet)
			}
			if !found {
				t.Errorf("%s: no violation carries the kubelet text %q: %v", c.name, c.kubelet, vs)
			}
		})
	}
}

func TestKubeletReasonsNameTheSource(t *testing.T) {
	vs := CheckKubelet(kr("/etc/subuid:4", ids.Range{Start: 65536, Count: 65536}, ids.Range{Start: 200000, Count: 1}), kr("/etc/subgid:2", ids.Range{Start: 65536, Count: 65536}), 110, 65536)
	if len(vs) != 1 || !strings.Contains(vs[0].Reason, "/etc/subuid:4, /etc/subuid:4") || !strings.Contains(vs[0].String(), "kubelet:") {
		t.Fatalf("got %v", vs)
	}
}

func TestKubeletRequestSatisfiesTheRules(t *testing.T) {
	for i, c := range []struct {
		used      []ids.Range
		maxPods   int
		idsPerPod uint64
	}{
		{nil, 110, 65536},
		{[]ids.Range{{Start: 100000, Count: 65536}, {Start: 165536, Count: 65536}}, 110, 65536},
		{[]ids.Range{{Start: 100000, Count: 65536}}, 250, 131072},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			req := KubeletRequest(100000, c.maxPods, c.idsPerPod)
			start, err := Allocate(c.used, req)
			if err != nil {
				t.Fatal(err)
			}
			r := ids.Range{Start: start, Count: req.Count}
			if vs := CheckKubelet(kr("a", r), kr("b", r), c.maxPods, c.idsPerPod); len(vs) != 0 {
				t.Errorf("allocated %v breaks %v", r, vs)
			}
		})
	}
}
