// Package hugepage asks the kernel to back one large, fresh allocation
// with transparent huge pages.
//
// On a host with 100,000 subordinate ID ranges, parsing /etc/subuid builds
// a 6 MB slice, and in a process that lives a fraction of a second most of
// the parse is first-touch page faults (about 1,600 of them, ~4 ms per MB
// on the VMs measured in docs/performance.md). With MADV_HUGEPAGE the same
// memory takes a handful of 2 MB faults. The advice changes no semantics:
// a kernel without THP, or in "never" mode, ignores it.
package hugepage

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Min is the smallest allocation worth advising: below two huge pages the
// aligned interior is too small to matter.
const Min = 4 << 20

// Slice advises the backing array of s (its full capacity) before it is
// written. Best effort: errors are ignored.
func Slice[T any](s []T) {
	var zero T
	n := cap(s) * int(unsafe.Sizeof(zero))
	if n < Min {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(s))
	const huge = 2 << 20
	base := uintptr(p)
	start := (base + huge - 1) &^ (huge - 1) // the 2 MB-aligned interior
	end := (base + uintptr(n)) &^ (huge - 1)
	if end <= start {
		return
	}
	mem := unsafe.Slice((*byte)(unsafe.Add(p, start-base)), int(end-start))
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
}
