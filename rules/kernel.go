package rules

// Kernel versions.
var (
	KernelIdmapMounts = def("kernel.idmap_mounts", "5.12",
		"mount_setattr(2) with MOUNT_ATTR_IDMAP: idmapped bind mounts", "fs/namespace.c do_mount_setattr, Linux 5.12")
	KernelOverlayIdmap = def("kernel.overlay_idmap", "5.19",
		"overlayfs over idmapped lower layers; containerd 2.x's overlayfs snapshotter claims remap support from this release on without probing", "fs/overlayfs, Linux 5.19; containerd plugins/snapshots/overlay/overlayutils/check.go SupportsIDMappedMounts")
	KernelMapExtents340 = def("kernel.uid_map_340_extents", "4.15",
		"uid_map and gid_map take up to kernel.uid_map_max_extents lines; before, 5 (UID_GID_MAP_MAX_EXTENTS), and a longer map fails with EINVAL", "include/linux/user_namespace.h, kernel/user_namespace.c map_write, Linux 4.15 (v4.14: 5)")
	KernelTmpfsIdmap = def("kernel.tmpfs_idmap", "6.3",
		"tmpfs supports idmapped mounts (Kubernetes secrets, configmaps, emptyDir)", "mm/shmem.c FS_ALLOW_IDMAP, Linux 6.3")
)

// RHEL/CentOS 7 point releases (their kernels are all 3.10.0-BUILD; the
// build numbers are versions.EL7Build74 and EL7Build76).
var (
	KernelEL7UsernsOn = def("kernel.el7_userns_on", "7.4",
		"RHEL/CentOS 7.4 (3.10.0-693): user namespaces without user_namespace.enable=1 on the kernel command line; user.max_user_namespaces defaults to 0",
		"RHEL 7.4 release notes (kernel 3.10.0-693)")
	KernelEL7UsernsMounts = def("kernel.el7_userns_mounts", "7.6",
		"RHEL/CentOS 7.6 (3.10.0-957): mounts inside user namespaces fully supported", "RHEL 7.6 release notes (kernel 3.10.0-957)")
)
