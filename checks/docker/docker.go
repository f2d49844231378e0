// Package docker holds the docker area's checks.
package docker

import "github.com/usernsctl/usernsctl/checks"

// Checkers returns the docker area's checks.
func Checkers() []checks.Checker { return nil }
