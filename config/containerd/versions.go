package containerd

// Config versions by containerd release (containerd's own version package
// and config loaders):
//
//	1.x      reads 1 (plugin IDs, deprecated in 1.7) and 2; refuses 3+
//	2.0–2.2  reads 2 and 3 (migrated on load); version 1 support was removed
//	2.3+     reads 2, 3 and 4; `config default` writes 4
//
// A release is given as major and minor numbers.

// RuleFor is the merge rule of a containerd release.
func RuleFor(major int) Rule {
	if major < 2 {
		return ReplacePlugins
	}
	return MergeKeys
}

// Supported returns the lowest and highest config version a containerd
// release reads.
func Supported(major, minor int) (lo, hi int) {
	switch {
	case major < 2:
		return 1, 2
	case major == 2 && minor < 3:
		return 2, 3
	}
	return 2, 4
}

// Native is the version a containerd release writes with `config default`:
// the one a new file for it should carry.
func Native(major, minor int) int {
	_, hi := Supported(major, minor)
	return hi
}
