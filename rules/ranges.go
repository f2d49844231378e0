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

// The kubelet's and the kernel's id range rules.
var (
	KubeletUnit = def("kubelet.unit", "65536",
		"the ids per pod before 1.35 and the default of userNamespaces.idsPerPod, which must be a multiple of it; the kubelet's range must start at a multiple of the per-pod block, at least one block up, and hold a whole number of blocks, at least maxPods",
		"pkg/kubelet/userns/userns_manager.go MakeUserNsManager (v1.30–v1.36); pkg/kubelet/apis/config/validation/validation_linux.go (v1.33+)")
	KubeletIDsPerPodMax = def("kubelet.ids_per_pod_max", "4294967295",
		"the largest userNamespaces.idsPerPod the kubelet accepts (`must not be more than 4294967295`)",
		"pkg/kubelet/apis/config/validation/validation_linux.go validateKubeletOSConfiguration, v1.33+")
	KernelMapEnd = def("kernel.uid_map_end", "4294967295",
		"an extent of uid_map/gid_map must end at or below it: lower_first + count ≤ 4294967295, else the write fails with EINVAL; so the last usable host id is 4294967294 and a kubelet block ending at 2^32 can never be mapped",
		"kernel/user_namespace.c map_write (the u32 overflow test), Linux 6.12")
	KernelMapMaxExtents = def("kernel.uid_map_max_extents", "340",
		"the most lines a uid_map or gid_map takes (UID_GID_MAP_MAX_EXTENTS); the kubelet writes one per pod",
		"include/linux/user_namespace.h, kernel/user_namespace.c map_write, Linux 4.15+")
)

// The same numbers, for arithmetic.
const (
	KubeletUnitIDs       = 65536
	KubeletIDsPerPodMaxN = 1<<32 - 1
	KernelMapEndID       = 1<<32 - 1
	KernelMapMaxLines    = 340
	KernelMapMaxLinesOld = 5 // before rules.KernelMapExtents340
)
