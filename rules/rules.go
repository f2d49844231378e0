// Package rules is the one table of the numbers the daemons enforce: the
// kernel, runtime and Kubernetes version gates and the id range rules.
// Checks, apply and the generated docs read them from here, so that a rule
// lives in one place; docs/rules.md says which daemon code enforces each.
package rules

// Ranges.
const (
	// DockerMinIDs is the smallest remap range that maps a whole container:
	// images carry files owned by ids up to 65534 (nobody), and a shorter
	// map fails them with `Container ID 65534 cannot be mapped to a host
	// ID`.
	DockerMinIDs = 65536
)
