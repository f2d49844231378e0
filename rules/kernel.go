package rules

// Kernel versions.
var (
	KernelIdmapMounts = def("kernel.idmap_mounts", "5.12",
		"mount_setattr(2) with MOUNT_ATTR_IDMAP: idmapped bind mounts", "fs/namespace.c do_mount_setattr, Linux 5.12")
	KernelOverlayIdmap = def("kernel.overlay_idmap", "5.19",
		"overlayfs over idmapped lower layers; containerd 2.x's overlayfs snapshotter claims remap support from this release on without probing", "fs/overlayfs, Linux 5.19; containerd plugins/snapshots/overlay/overlayutils/check.go SupportsIDMappedMounts")
	KernelTmpfsIdmap = def("kernel.tmpfs_idmap", "6.3",
		"tmpfs supports idmapped mounts (Kubernetes secrets, configmaps, emptyDir)", "mm/shmem.c FS_ALLOW_IDMAP, Linux 6.3")
)
