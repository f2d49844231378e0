package rules

// Id ranges.
var (
	// DockerMinIDs is the smallest remap range that maps a whole container.
	DockerMinIDs = def("docker.min_ids", "65536",
		"the smallest remap range that maps a whole container: images carry files owned by ids up to 65534 (nobody), and a shorter map fails them (`container ID 65534 cannot be mapped to a host ID`)",
		"moby pkg/idtools toHost (≤27), moby/sys/user toHost (28+)")
)

// DockerMinIDCount is DockerMinIDs as a number.
const DockerMinIDCount = 65536
