package probe

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// fsNames names statfs(2) f_type magics for messages. The mount table's
// fstype is preferred when it can be found (it tells nfs4 from nfs and
// names the FUSE server); this is the fallback.
var fsNames = map[int64]string{
	unix.EXT4_SUPER_MAGIC:      "ext4", // also ext2 and ext3: one magic
	unix.XFS_SUPER_MAGIC:       "xfs",
	unix.BTRFS_SUPER_MAGIC:     "btrfs",
	unix.BCACHEFS_SUPER_MAGIC:  "bcachefs",
	unix.F2FS_SUPER_MAGIC:      "f2fs",
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.RAMFS_MAGIC:           "ramfs",
	unix.HUGETLBFS_MAGIC:       "hugetlbfs",
	unix.OVERLAYFS_SUPER_MAGIC: "overlay",
	unix.NFS_SUPER_MAGIC:       "nfs",
	unix.CIFS_SUPER_MAGIC:      "cifs",
	unix.SMB2_SUPER_MAGIC:      "smb3",
	unix.CEPH_SUPER_MAGIC:      "ceph",
	unix.FUSE_SUPER_MAGIC:      "fuse",
	unix.V9FS_MAGIC:            "9p",
	unix.OCFS2_SUPER_MAGIC:     "ocfs2",
	unix.SQUASHFS_MAGIC:        "squashfs",
	unix.EROFS_SUPER_MAGIC_V1:  "erofs",
	unix.MSDOS_SUPER_MAGIC:     "vfat",
	unix.EXFAT_SUPER_MAGIC:     "exfat",
	unix.ISOFS_SUPER_MAGIC:     "iso9660",
	unix.REISERFS_SUPER_MAGIC:  "reiserfs",
	unix.NILFS_SUPER_MAGIC:     "nilfs2",
	unix.ECRYPTFS_SUPER_MAGIC:  "ecryptfs",
	unix.PROC_SUPER_MAGIC:      "proc",
	unix.SYSFS_MAGIC:           "sysfs",
	0x2fc12fc1:                 "zfs",
	0x01161970:                 "gfs2",
	0x5346544e:                 "ntfs",
	0x61756673:                 "aufs",
	0x4244:                     "hfs",
	0x482b:                     "hfsplus",
}

// fsName names a statfs magic, or gives it in hex.
func fsName(magic int64) string {
	if n, ok := fsNames[magic]; ok {
		return n
	}
	return "unknown (statfs magic 0x" + strconv.FormatInt(magic, 16) + ")"
}
