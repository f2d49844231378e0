// Package ids is the one type for a range of user or group ids: a
// subordinate range, the host side of a uid_map extent, a block the
// kubelet gives a pod.
package ids

import "fmt"

// Range is the half-open id interval [Start, Start+Count).
type Range struct {
	Start uint64 `json:"start"`
	Count uint64 `json:"count"`
}

// End is the first id after the range.
func (r Range) End() uint64 { return r.Start + r.Count }

// Last is the last id in the range (Start-1 when empty).
func (r Range) Last() uint64 { return r.Start + r.Count - 1 }

// Contains reports whether id lies in r.
func (r Range) Contains(id uint64) bool { return id >= r.Start && id < r.End() }

// Overlaps reports whether r and o share an id.
func (r Range) Overlaps(o Range) bool { return r.Start < o.End() && o.Start < r.End() }

// Within reports whether every id of r lies in o.
func (r Range) Within(o Range) bool { return r.Start >= o.Start && r.End() <= o.End() }

// String is "START:COUNT", the way /etc/subuid writes a range (without
// its owner).
func (r Range) String() string { return fmt.Sprintf("%d:%d", r.Start, r.Count) }
