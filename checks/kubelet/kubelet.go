// Package kubelet holds the kubelet area's checks.
package kubelet

import "github.com/usernsctl/usernsctl/checks"

// Checkers returns the kubelet area's checks.
func Checkers() []checks.Checker { return nil }
