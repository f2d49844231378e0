// Package kernel holds the kernel area's checks.
package kernel

import "github.com/usernsctl/usernsctl/checks"

// Checkers returns the kernel area's checks.
func Checkers() []checks.Checker { return nil }
