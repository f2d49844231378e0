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

func ruleNames(vs []Violation) string {
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
		// U6 before U7: the kubelet compares the two outputs first.
		{"two subuid lines", kr("/etc/subuid:1", docs, ids.Range{Start: 7274496, Count: 65536}), kr("b", docs), 110, 65536,
			"identical,one-line", `mismatched subuids and subgids for user "kubelet"`},
		{"two lines in both files", kr("/etc/subuid:1", docs, ids.Range{Start: 7274496, Count: 65536}), kr("/etc/subgid:1", docs, ids.Range{Start: 7274496, Count: 65536}), 110, 65536,
			"one-line,one-line", `error parsing line "0: kubelet 65536 7208960\n1: kubelet 7274496 65536\n": it must contain only one line`},
		{"no subuid line (U4)", KubeletRange{}, kr("b", docs), 110, 65536,
			"one-line", `error retrieving additional uids for user "kubelet": exit status 1`},
		{"start 0", kr("a", ids.Range{Start: 0, Count: 7208960}), kr("b", ids.Range{Start: 0, Count: 7208960}), 110, 65536,
			"start-min", "kubelet user assigned ID 0 must be greater or equal to 65536"},
		{"unaligned count", kr("a", ids.Range{Start: 65536, Count: 7208961}), kr("b", ids.Range{Start: 65536, Count: 7208961}), 110, 65536,
			"aligned-count", "kubelet user assigned IDs length 7208961 is not a multiple of 65536"},
		// R7: the kubelet accepts a range ending at 2^32, the kernel
		// refuses its top block.
		{"ends at 2^32", kr("a", ids.Range{Start: 1 << 31, Count: 1 << 31}), kr("b", ids.Range{Start: 1 << 31, Count: 1 << 31}), 110, 65536, "kernel-top-block", ""},
		{"field state: kubelet:4287758336:7208960", kr("a", ids.Range{Start: 4287758336, Count: 7208960}), kr("b", ids.Range{Start: 4287758336, Count: 7208960}), 110, 65536, "kernel-top-block", ""},
		{"ends one block below 2^32", kr("a", ids.Range{Start: 4287758336 - 65536, Count: 7208960}), kr("b", ids.Range{Start: 4287758336 - 65536, Count: 7208960}), 110, 65536, "", ""},
		// R6: past 2^32 the block starts wrap.
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
			if got := ruleNames(vs); got != c.rules {
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
	if len(vs) != 2 || !strings.Contains(vs[1].Reason, "/etc/subuid:4, /etc/subuid:4") || !strings.Contains(vs[0].String(), "kubelet:") {
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

// The kubelet's own parse of getsubids' output (U4–U9), texts as
// kubelet_pods.go prints them.
func TestParseKubeletMappings(t *testing.T) {
	docs := "0: kubelet 65536 7208960\n"
	for _, c := range []struct {
		name    string
		uid     string
		uidExit int
		gid     string
		gidExit int
		want    ids.Range
		kubelet string
	}{
		{"docs example", docs, 0, docs, 0, ids.Range{Start: 65536, Count: 7208960}, ""},
		{"U4 no uid range", "", 1, docs, 0, ids.Range{}, `error retrieving additional uids for user "kubelet": exit status 1`},
		{"U5 no gid range", docs, 0, "", 1, ids.Range{}, `error retrieving additional gids for user "kubelet"`},
		{"U6 mismatch, even with other line counts", docs + "1: kubelet 8000000 65536\n", 0, docs, 0, ids.Range{}, `mismatched subuids and subgids for user "kubelet"`},
		{"U7 two lines", docs + docs, 0, docs + docs, 0, ids.Range{}, `error parsing line "0: kubelet 65536 7208960\n0: kubelet 65536 7208960\n": it must contain only one line`},
		{"U8 nothing printed, exit 0", "", 0, "", 0, ids.Range{}, `invalid line ""`},
		{"U8 three fields", "kubelet 65536 7208960\n", 0, "kubelet 65536 7208960\n", 0, ids.Range{}, `invalid line "kubelet 65536 7208960\n"`},
		{"U9 start past 32 bits", "0: kubelet 4294967296 65536\n", 0, "0: kubelet 4294967296 65536\n", 0, ids.Range{},
			`error parsing line "0: kubelet 4294967296 65536\n": strconv.ParseUint: parsing "4294967296": value out of range`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, v := ParseKubeletMappings(c.uid, c.uidExit, c.gid, c.gidExit)
			switch {
			case c.kubelet == "" && v != nil:
				t.Fatalf("refused: %v", v)
			case c.kubelet != "" && (v == nil || v.Kubelet != c.kubelet):
				t.Fatalf("got %v, want the kubelet text %q", v, c.kubelet)
			case r != c.want:
				t.Errorf("range %v, want %v", r, c.want)
			}
		})
	}
}

// R4/R5 on the default range from 1.35: start idsPerPod, count 2^32 −
// idsPerPod; the kubelet refuses any idsPerPod that is not a power of two,
// and one whose 2^32/idsPerPod − 1 blocks are fewer than maxPods. The
// top block always ends at 2^32 (R7).
func TestKubeletDefaultRangeRules(t *testing.T) {
	for _, c := range []struct {
		unit    uint64
		maxPods int
		rules   string
	}{
		{65536, 110, RuleTopBlock},
		{196608, 110, "aligned-count"}, // its blocks end below 2^32
		{1 << 25, 110, RuleTopBlock},
		{1 << 26, 110, "count-pods," + RuleTopBlock},
		{65536, 65536, "count-pods," + RuleTopBlock},
	} {
		t.Run(fmt.Sprint(c.unit, "/", c.maxPods), func(t *testing.T) {
			vs := CheckKubeletRange(KubeletDefaultRange(c.unit), c.maxPods, c.unit)
			if got := ruleNames(vs); got != c.rules {
				t.Errorf("rules %q, want %q (%v)", got, c.rules, vs)
			}
			if c.unit == 196608 && !strings.Contains(vs[0].Kubelet, "kubelet user assigned IDs length 4294770688 is not a multiple of 196608") {
				t.Errorf("kubelet text %q", vs[0].Kubelet)
			}
		})
	}
}

// Apply never hands out a range whose top block the kernel refuses, even
// when the only free room reaches 2^32.
func TestKubeletRequestStaysBelowTheKernelBound(t *testing.T) {
	for _, unit := range []uint64{65536, 1 << 20} {
		req := KubeletRequest(100000, 110, unit)
		count := req.Count
		used := []ids.Range{{Start: 0, Count: 1<<32 - count - unit}} // free: the top count+unit ids
		start, err := Allocate(used, req)
		if err != nil {
			t.Fatalf("unit %d: %v", unit, err)
		}
		r := ids.Range{Start: start, Count: count}
		if r.End() > 1<<32-unit {
			t.Errorf("unit %d: allocated %v ends past 2^32 − %d", unit, r, unit)
		}
		if vs := CheckKubeletRange(r, 110, unit); len(vs) != 0 {
			t.Errorf("unit %d: %v breaks %v", unit, r, vs)
		}
		// With only the top count ids free there is no room.
		if _, err := Allocate([]ids.Range{{Start: 0, Count: 1<<32 - count}}, req); err == nil {
			t.Errorf("unit %d: allocated a range ending at 2^32", unit)
		}
	}
}

func TestCheckPodRecords(t *testing.T) {
	rec := func(pod, json string) PodRecord {
		return PodRecord{Pod: pod, Path: "/var/lib/kubelet/pods/" + pod + "/userns", Data: []byte(json)}
	}
	m := func(host, cont, length uint64) string {
		return fmt.Sprintf(`{"uidMappings":[{"hostId":%d,"containerId":%d,"length":%d}],"gidMappings":[{"hostId":%d,"containerId":%d,"length":%d}]}`, host, cont, length, host, cont, length)
	}
	r := ids.Range{Start: 16777216, Count: 7208960}
	for _, c := range []struct {
		name    string
		recs    []PodRecord
		unit    uint64
		kubelet []string
	}{
		{"fits", []PodRecord{rec("a", m(16777216, 0, 65536)), rec("b", m(16842752, 0, 65536)), rec("c", "")}, 65536, nil},
		{"P1 out of range", []PodRecord{rec("a", m(2818048, 0, 65536))}, 65536, []string{"id 2818048 is out of range"}},
		{"P1 past the top block", []PodRecord{rec("a", m(r.End(), 0, 65536))}, 65536, []string{fmt.Sprintf("id %d is out of range", r.End())}},
		{"P2 idsPerPod changed", []PodRecord{rec("a", m(16777216, 0, 65536))}, 131072, []string{"wrong user namespace length 65536"}},
		{"P3 offset", []PodRecord{rec("a", m(16777216+4096, 0, 65536))}, 65536, []string{"wrong user namespace offset specified 16781312"}},
		{"P4 taken", []PodRecord{rec("p1", m(16777216, 0, 65536)), rec("p2", m(16777216, 0, 65536))}, 65536, []string{`range picked for pod "p2" already taken`}},
		{"P5 not JSON", []PodRecord{rec("a", "x")}, 65536, []string{"invalid user namespace mappings file: invalid character 'x' looking for beginning of value"}},
		{"P6 two mappings", []PodRecord{rec("a", `{"uidMappings":[{"hostId":16777216,"length":65536},{"hostId":16842752,"length":65536}],"gidMappings":[]}`)}, 65536,
			[]string{"invalid user namespace configuration: no more than one mapping allowed."}},
		{"P6 no gid", []PodRecord{rec("a", `{"uidMappings":[{"hostId":16777216,"length":65536}]}`)}, 65536,
			[]string{"invalid user namespace configuration: GID and UID mappings should be identical."}},
		{"P6 uid != gid", []PodRecord{rec("a", `{"uidMappings":[{"hostId":16777216,"length":65536}],"gidMappings":[{"hostId":16842752,"length":65536}]}`)}, 65536,
			[]string{"invalid user namespace configuration: GID and UID mapping should be identical"}},
		{"P6 container id", []PodRecord{rec("a", m(16777216, 1, 65536))}, 65536, []string{"invalid user namespace configuration: UID 0 must be mapped"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			vs := CheckPodRecords(c.recs, r, c.unit)
			var got []string
			for _, v := range vs {
				got = append(got, v.Kubelet)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.kubelet) {
				t.Errorf("got %q, want %q", got, c.kubelet)
			}
		})
	}
	v := PodViolation{Pod: "p", Kubelet: "id 1 is out of range"}
	if got := PodRecordError(v, true); got != `failed to create kubelet: create user namespace manager: record pod mappings for existing pod "p": id 1 is out of range` {
		t.Error(got)
	}
	if got := PodRecordError(v, false); got != `failed to create kubelet: create user namespace manager: record pod mappings: id 1 is out of range` {
		t.Error(got)
	}
}
