// Package containerd holds the containerd area's checks.
package containerd

import "github.com/usernsctl/usernsctl/checks"

// Checkers returns the containerd area's checks.
func Checkers() []checks.Checker { return nil }
