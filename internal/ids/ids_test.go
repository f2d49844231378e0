package ids

import "testing"

func TestRange(t *testing.T) {
	r := Range{Start: 100000, Count: 65536}
	if r.End() != 165536 || r.Last() != 165535 || r.String() != "100000:65536" {
		t.Errorf("%v: end %d last %d", r, r.End(), r.Last())
	}
	if !r.Contains(100000) || !r.Contains(165535) || r.Contains(165536) || r.Contains(99999) {
		t.Error("Contains")
	}
	if !r.Overlaps(Range{Start: 165535, Count: 1}) || r.Overlaps(Range{Start: 165536, Count: 10}) || r.Overlaps(Range{Start: 0, Count: 100000}) {
		t.Error("Overlaps")
	}
	if !(Range{Start: 100001, Count: 10}).Within(r) || (Range{Start: 165530, Count: 10}).Within(r) {
		t.Error("Within")
	}
}
