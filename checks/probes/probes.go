// Package probes holds the probes area's checks.
package probes

import "github.com/usernsctl/usernsctl/checks"

// Checkers returns the probes area's checks.
func Checkers() []checks.Checker { return nil }
