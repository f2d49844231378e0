package remap

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/ids"
)

func mustParse(t testing.TB, name, s string) *subid.File {
	t.Helper()
	f, err := subid.Parse(strings.NewReader(s), name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAllocateLikeShadow(t *testing.T) {
	def := Request{Min: 100000, Max: 600100000, Count: 65536}
	cases := []struct {
		name string
		used []ids.Range
		req  Request
		want uint64
		err  bool
	}{
		{"empty files", nil, def, 100000, false},
		{"after the first user", []ids.Range{{Start: 100000, Count: 65536}}, def, 165536, false},
		{"unsorted input", []ids.Range{{Start: 231072, Count: 65536}, {Start: 100000, Count: 65536}}, def, 165536, false},
		{"a hole too small is skipped", []ids.Range{{Start: 100000, Count: 65536}, {Start: 200000, Count: 65536}}, def, 265536, false},
		{"a hole that fits exactly", []ids.Range{{Start: 100000, Count: 65536}, {Start: 231072, Count: 65536}}, def, 165536, false},
		{"a range below MIN is ignored", []ids.Range{{Start: 1000, Count: 5000}}, def, 100000, false},
		{"a range straddling MIN", []ids.Range{{Start: 50000, Count: 65536}}, def, 115536, false},
		{"a small range inside the candidate (moby misses it)", []ids.Range{{Start: 150000, Count: 10}}, def, 150010, false},
		{"a range contained in another", []ids.Range{{Start: 100000, Count: 200000}, {Start: 150000, Count: 10}}, def, 300000, false},
		{"an account uid inside", []ids.Range{{Start: 100000, Count: 65536}, {Start: 170000, Count: 1}}, def, 170001, false},
		// MAX is inclusive: the last id of the range may be MAX.
		{"tail ends exactly at MAX", nil, Request{Min: 100, Max: 199, Count: 100}, 100, false},
		{"tail one short", nil, Request{Min: 100, Max: 198, Count: 100}, 0, true},
		{"gap before a range above MAX ends at MAX", []ids.Range{{Start: 1000, Count: 5}}, Request{Min: 100, Max: 199, Count: 100}, 100, false},
		{"gap clipped at MAX", []ids.Range{{Start: 150, Count: 5}, {Start: 1000, Count: 5}}, Request{Min: 100, Max: 254, Count: 100}, 155, false},
		{"gap clipped one short of MAX", []ids.Range{{Start: 150, Count: 5}, {Start: 1000, Count: 5}}, Request{Min: 100, Max: 253, Count: 100}, 0, true},
		{"full", []ids.Range{{Start: 100000, Count: 600000001}}, def, 0, true},
		{"aligned", []ids.Range{{Start: 100000, Count: 65536}}, Request{Min: 65536, Max: 1<<32 - 1, Count: 7208960, Align: 65536}, 196608, false},
		{"aligned start rounds MIN up", nil, Request{Min: 100000, Max: 1<<32 - 1, Count: 65536, Align: 65536}, 131072, false},
		{"aligned to the top of the id space", []ids.Range{{Start: 65536, Count: 1<<32 - 65536*2}}, Request{Min: 65536, Max: 1 << 40, Count: 65536, Align: 65536}, 1<<32 - 65536, false},
		{"never past the last id", []ids.Range{{Start: 65536, Count: 1<<32 - 65536*2}}, Request{Min: 65536, Max: 1 << 40, Count: 65537, Align: 65536}, 0, true},
		{"count 0", nil, Request{Min: 1, Max: 10, Count: 0}, 0, true},
		{"min above max", nil, Request{Min: 11, Max: 10, Count: 1}, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {

			got, err := Allocate(c.used, c.req)
			if (err != nil) != c.err || (err == nil && got != c.want) {
				t.Errorf("%s: got %d, %v; want %d (error %v)", c.name, got, err, c.want, c.err)
			}
		})
	}
}

func TestAllocateErrorSaysWhy(t *testing.T) {
	_, err := Allocate([]ids.Range{{Start: 100000, Count: 65536}, {Start: 200000, Count: 600000000}}, Request{Min: 100000, Max: 600100000, Count: 65536})
	if !errors.Is(err, ErrNoRoom) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"65536 ids between 100000 and 600100000", "2 ranges", "largest gap is 34464 ids at 165536"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

// TestAllocateMatchesBruteForce compares with the definition: the lowest
// aligned start ≥ Min whose range is free and ends at or below Max.
func TestAllocateMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 3000; iter++ {
		var used []ids.Range
		for range rng.IntN(12) {
			used = append(used, ids.Range{Start: uint64(rng.IntN(400)), Count: uint64(1 + rng.IntN(60))})
		}
		req := Request{Min: uint64(rng.IntN(100)), Max: uint64(200 + rng.IntN(300)), Count: uint64(1 + rng.IntN(80)), Align: uint64(rng.IntN(4) * 8)}
		want, ok := bruteForce(used, req)
		got, err := Allocate(used, req)
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("used %v req %+v: got %d, %v; want %d, %v", used, req, got, err, want, ok)
		}
	}
}

func bruteForce(used []ids.Range, req Request) (uint64, bool) {
	a := max(req.Align, 1)
	for s := alignUp(req.Min, a); s+req.Count-1 <= req.Max; s += a {
		free := true
		for _, u := range used {
			if s < u.End() && u.Start < s+req.Count {
				free = false
				break
			}
		}
		if free {
			return s, true
		}
	}
	return 0, false
}

func TestAllocateDoesNotModifyInput(t *testing.T) {
	used := []ids.Range{{Start: 300, Count: 1}, {Start: 100, Count: 1}, {Start: 200, Count: 1}}
	if _, err := Allocate(used, Request{Min: 0, Max: 1000, Count: 5}); err != nil {
		t.Fatal(err)
	}
	if used[0].Start != 300 || used[1].Start != 100 {
		t.Fatalf("input reordered: %v", used)
	}
}

func TestOccupiedUsesBothFilesAndAccounts(t *testing.T) {
	uid := mustParse(t, "/etc/subuid", "alice:100000:65536\n# junk\n")
	gid := mustParse(t, "/etc/subgid", "alice:165536:65536\nbob:231072:65536\n")
	used := Occupied([]*subid.File{uid, gid, nil}, []int{0, 1000, 296608}, []int{-1, 296700})
	if len(used) != 3+4 {
		t.Fatalf("got %v", used)
	}
	// A range that is free in /etc/subuid but taken in /etc/subgid is not
	// handed out, nor one that would contain an account id.
	got, err := Allocate(used, Request{Min: 100000, Max: 600100000, Count: 65536})
	if err != nil || got != 296701 {
		t.Fatalf("got %d, %v; want 296701", got, err)
	}
}

// BenchmarkAllocate measures the whole allocation (copy, sort, walk) over
// n shuffled ranges whose only large enough gap is after the last one, so
// every range is visited. Growth with n should be n log n.
func BenchmarkAllocate(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		used := make([]ids.Range, n)
		for i := range used {
			// 100-id ranges with 1-id holes, from 100000.
			used[i] = ids.Range{Start: 100000 + uint64(i)*101, Count: 100}
		}
		rng := rand.New(rand.NewPCG(7, uint64(n)))
		rng.Shuffle(n, func(i, j int) { used[i], used[j] = used[j], used[i] })
		req := Request{Min: 100000, Max: 1<<32 - 1, Count: 65536}
		want := 100000 + uint64(n)*101 - 1
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				got, err := Allocate(used, req)
				if err != nil || got != want {
					b.Fatalf("got %d, %v; want %d", got, err, want)
				}
			}
		})
	}
}

// BenchmarkAllocateFromFiles is apply's whole allocation on a host with a
// 100,000-line /etc/subuid and /etc/subgid: parse both, collect, allocate.
func BenchmarkAllocateFromFiles(b *testing.B) {
	var sb strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&sb, "user%d:%d:65536\n", i, 100000+uint64(i)*65536%4000000000)
	}
	text := sb.String()
	req := Request{Min: 100000, Max: 1<<32 - 1, Count: 65536}
	for b.Loop() {
		uid := mustParse(b, "/etc/subuid", text)
		gid := mustParse(b, "/etc/subgid", text)
		if _, err := Allocate(Occupied([]*subid.File{uid, gid}), req); err != nil && !errors.Is(err, ErrNoRoom) {
			b.Fatal(err)
		}
	}
}

// Files that share their parsed lines (subgid a byte copy of subuid)
// count once; their appended lines still count.
func TestOccupiedCountsSharedLinesOnce(t *testing.T) {
	uid, err := subid.Parse(strings.NewReader("a:100000:65536\nb:165536:65536\n"), "/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}
	gid := uid.Alias("/etc/subgid")
	gid.Append(subid.NewRange("c", 300000, 10))
	got := Occupied([]*subid.File{uid, gid})
	if len(got) != 3 {
		t.Fatalf("got %v, want the two shared ranges once and gid's own", got)
	}
	other, _ := subid.Parse(strings.NewReader("a:100000:65536\nb:165536:65536\n"), "/etc/subgid")
	if n := len(Occupied([]*subid.File{uid, other})); n != 4 {
		t.Fatalf("separately parsed files: %d ranges, want 4", n)
	}
}
