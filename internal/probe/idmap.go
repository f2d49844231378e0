package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// session is one probe's mount work on the worker thread: the scratch
// directory it made and the mounts it attached, undone by close on every
// path.
type session struct {
	job     *job
	dir     string
	mounts  []string
	chdired bool
}

// stepErr is a failure at a named step.
type stepErr struct {
	step string
	err  error
}

func (e *stepErr) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepErr) Unwrap() error { return e.err }

// step records what the probe is doing (for timeouts) and stops it when
// its context is done.
func (s *session) step(name string) error {
	s.job.setStep(name)
	if testHook != nil {
		testHook(name)
	}
	if err := s.job.ctx.Err(); err != nil {
		return &stepErr{name, err}
	}
	return nil
}

// testHook, when set by a test, runs at every step of a mount probe.
var testHook func(step string)

// makeScratch creates the probe's private 0700 directory in parent.
func (s *session) makeScratch(parent string) error {
	if err := s.step("scratch"); err != nil {
		return err
	}
	dir, err := scratch.make(parent)
	if err != nil {
		return &stepErr{"scratch", err}
	}
	s.dir = dir
	return nil
}

// close detaches every mount, newest first, then removes the scratch
// directory. If a mount cannot be detached the directory is left alone
// rather than removed through the mount.
func (s *session) close() error {
	var errs []error
	for i := len(s.mounts) - 1; i >= 0; i-- {
		err := unix.Unmount(s.mounts[i], unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("detach %s: %w", s.mounts[i], err))
		}
	}
	s.mounts = nil
	if s.chdired {
		_ = unix.Chdir("/")
	}
	if s.dir != "" {
		if len(errs) == 0 {
			if err := scratch.remove(s.dir); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", s.dir, err))
			}
		} else {
			errs = append(errs, fmt.Errorf("left %s in place", s.dir))
		}
		s.dir = ""
	}
	return errors.Join(errs...)
}

// attach makes an idmapped clone of src and mounts it on target: the
// sequence containerd, crun and util-linux use.
func (s *session) attach(src, target string, nsfd int, extra uint64) error {
	if err := s.step("open_tree"); err != nil {
		return err
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &stepErr{"open_tree", err}
	}
	defer unix.Close(fd)
	if err := s.step("mount_setattr"); err != nil {
		return err
	}
	attr := unix.MountAttr{
		Attr_set:    unix.MOUNT_ATTR_IDMAP | extra,
		Userns_fd:   uint64(nsfd),
		Propagation: unix.MS_PRIVATE,
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return &stepErr{"mount_setattr", err}
	}
	if err := s.step("move_mount"); err != nil {
		return err
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &stepErr{"move_mount", err}
	}
	s.mounts = append(s.mounts, target)
	return nil
}

// mount is mount(2) with the target remembered for close.
func (s *session) mount(step, source, target, fstype string, flags uintptr, data string) error {
	if err := s.step(step); err != nil {
		return err
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &stepErr{step, err}
	}
	s.mounts = append(s.mounts, target)
	return nil
}

// target describes the filesystem under test.
type target struct {
	path      string // as asked
	dir       string // nearest existing directory, symlinks resolved
	mountRoot bool   // dir is the root of its mount
	mntID     uint64
}

// resolve finds the nearest existing directory at or above path.
func (s *session) resolve(path string) (target, error) {
	t := target{path: path}
	if err := s.step("resolve"); err != nil {
		return t, err
	}
	p := filepath.Clean(path)
	for {
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			break
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return t, &stepErr{"resolve", err}
		}
		if p == "/" {
			return t, &stepErr{"resolve", fmt.Errorf("no existing directory at or above %s", path)}
		}
		p = filepath.Dir(p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return t, &stepErr{"resolve", err}
	}
	t.dir = real
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, real, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return t, &stepErr{"statx", err}
	}
	t.mntID = stx.Mnt_id
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		t.mountRoot = stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	} else {
		t.mountRoot = real == "/" || isMountPoint(real)
	}
	return t, nil
}

// isMountPoint compares a directory's mount with its parent's, for kernels
// whose statx has no STATX_ATTR_MOUNT_ROOT.
func isMountPoint(dir string) bool {
	var a, b unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &a) != nil ||
		unix.Statx(unix.AT_FDCWD, filepath.Dir(dir), unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &b) != nil {
		return false
	}
	return a.Mnt_id != b.Mnt_id
}

// workParent is where a scratch directory for t goes: beside the
// directory (same mount, so the same filesystem) rather than inside it,
// so that no daemon scanning its own directory (the kubelet reads every
// entry of pods/ as a pod UID) sees it; inside when the directory is
// the root of its mount and "beside" would be another filesystem.
func (t target) workParent() string {
	if t.mountRoot {
		return t.dir
	}
	return filepath.Dir(t.dir)
}

func (t target) detail() map[string]string {
	d := map[string]string{"path": t.path, "dir": t.dir}
	if t.dir != "" && filepath.Clean(t.path) != t.dir {
		if _, err := os.Stat(t.path); err != nil {
			d["missing"] = "true"
		}
	}
	return d
}

// describeFS fills fstype (the mount table's name, which tells nfs4 from
// nfs and names FUSE servers, else the statfs magic's), source and magic.
func (s *session) describeFS(d map[string]string, dir string, mntID uint64) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil {
		d["fs_magic"] = "0x" + strconv.FormatInt(int64(st.Type), 16)
		d["fstype"] = fsName(int64(st.Type))
	}
	if m := mountByID(mntID); m != nil {
		d["fstype"] = m.FSType
		d["source"] = m.Source
	}
}

// mountByID finds a mount of the worker's namespace in its mount table.
func mountByID(id uint64) *mountinfo.Info {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	ms, err := mountinfo.GetMountsFromReader(f, func(i *mountinfo.Info) (skip, stop bool) {
		return uint64(i.ID) != id, uint64(i.ID) == id
	})
	if err != nil || len(ms) == 0 {
		return nil
	}
	return ms[0]
}

// checkIdmapped verifies that the kernel lists the mount on target as
// idmapped: a mount helper can return success without attaching the map
// (util-linux 2.38, traps.md). The worker's own table is read: the host's
// /proc/self/mountinfo never shows probe mounts.
func (s *session) checkIdmapped(target string, d map[string]string) error {
	if err := s.step("mountinfo"); err != nil {
		return err
	}
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, target, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return &stepErr{"mountinfo", err}
	}
	m := mountByID(stx.Mnt_id)
	if m == nil {
		return &stepErr{"mountinfo", fmt.Errorf("the probe mount (id %d) is not in /proc/thread-self/mountinfo", stx.Mnt_id)}
	}
	d["mount_options"] = m.Options
	for _, o := range strings.Split(m.Options, ",") {
		if o == "idmapped" {
			return nil
		}
	}
	return &stepErr{"mountinfo", fmt.Errorf("the mount reports options %q, without \"idmapped\": the map was not attached", m.Options)}
}

// owner is a file's uid:gid.
type owner struct{ uid, gid uint32 }

func (o owner) String() string { return fmt.Sprintf("%d:%d", o.uid, o.gid) }

func ownerOf(path string) (owner, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return owner{}, err
	}
	return owner{st.Uid, st.Gid}, nil
}

// mapped is what an owner looks like through a mount idmapped with the
// probe namespace: root becomes MappedUID:MappedGID, every other id is
// unmapped and shows as the overflow id.
func mapped(o owner) owner {
	m := owner{overflowID("uid"), overflowID("gid")}
	if o.uid == 0 {
		m.uid = MappedUID
	}
	if o.gid == 0 {
		m.gid = MappedGID
	}
	return m
}

func overflowID(kind string) uint32 {
	b, err := os.ReadFile("/proc/sys/kernel/overflow" + kind)
	if err != nil {
		return 65534
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 65534
	}
	return uint32(n)
}

// seeOwner stats path and requires want.
func (s *session) seeOwner(path string, want owner, d map[string]string) error {
	if err := s.step("stat"); err != nil {
		return err
	}
	got, err := ownerOf(path)
	if err != nil {
		return &stepErr{"stat", err}
	}
	d["owner"], d["want"] = got.String(), want.String()
	if got != want {
		return &stepErr{"stat", fmt.Errorf("owner through the idmapped mount is %s, want %s: the map was not applied", got, want)}
	}
	return nil
}

// probeFile creates a small root-owned file and returns its real owner
// (a filesystem may force another: NFS root squash, vfat uid=).
func (s *session) probeFile(path string) (owner, error) {
	if err := s.step("create"); err != nil {
		return owner{}, err
	}
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return owner{}, &stepErr{"create", err}
	}
	unix.Close(fd)
	o, err := ownerOf(path)
	if err != nil {
		return owner{}, &stepErr{"create", err}
	}
	return o, nil
}

func (s *session) mkdirs(names ...string) error {
	if err := s.step("mkdir"); err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Mkdir(filepath.Join(s.dir, n), 0o700); err != nil {
			return &stepErr{"mkdir", err}
		}
	}
	return nil
}

// result turns a probe's outcome into a Result.
func result(err error, d map[string]string) Result {
	if err == nil {
		return Result{Ran: true, OK: true, Detail: d}
	}
	var se *stepErr
	step := "probe"
	if errors.As(err, &se) {
		step = se.step
		err = se.err
	}
	if errors.Is(err, errDying) {
		return Result{Reason: "interrupted before it finished: " + err.Error(), Detail: d}
	}
	if errors.Is(err, context.Canceled) {
		return Result{Reason: "interrupted before it finished: " + err.Error(), Detail: d}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Result{Ran: true, Step: step, Errno: "ETIMEDOUT", Error: "timed out", Detail: d}
	}
	return failure(step, err, d)
}

// notWritable reports whether err means "cannot create anything here" rather
// than a probe failure.
func notWritable(err error) bool {
	for _, e := range []error{unix.EROFS, unix.EACCES, unix.EPERM, unix.EDQUOT, unix.ENOSPC} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// idmap probes the filesystem holding path. A directory inside a larger
// filesystem gets a scratch directory beside it with a root-owned file,
// which must show as MappedUID:MappedGID through an idmapped bind mount. A
// mount root (a pod volume, a dedicated disk) is cloned as it is, so
// nothing is written into it; so is a directory where nothing can be
// written (read-only, NFS root squash).
func (s *session) idmap(path string, nsfd int) Result {
	t, err := s.resolve(path)
	d := t.detail()
	if err != nil {
		return result(err, d)
	}
	s.describeFS(d, t.dir, t.mntID)
	if t.mountRoot {
		return result(s.cloneAsIs(t, nsfd, d), d)
	}
	err = s.makeScratch(t.workParent())
	if err != nil && notWritable(err) {
		d["scratch_error"] = err.Error()
		return result(s.cloneAsIs(t, nsfd, d), d)
	}
	if err != nil {
		return result(err, d)
	}
	d["method"] = "scratch"
	if err := s.mkdirs("src", "mnt"); err != nil {
		return result(err, d)
	}
	src, mnt := filepath.Join(s.dir, "src"), filepath.Join(s.dir, "mnt")
	real, err := s.probeFile(filepath.Join(src, "f"))
	if err != nil {
		return result(err, d)
	}
	if err := s.attach(src, mnt, nsfd, 0); err != nil {
		return result(err, d)
	}
	if err := s.seeOwner(filepath.Join(mnt, "f"), mapped(real), d); err != nil {
		return result(err, d)
	}
	return result(s.checkIdmapped(mnt, d), d)
}

// cloneAsIs idmaps a clone of t.dir itself and attaches it in a scratch
// directory under the temporary directory; t's filesystem is not written.
func (s *session) cloneAsIs(t target, nsfd int, d map[string]string) error {
	d["method"] = "clone"
	real, err := ownerOf(t.dir)
	if err != nil {
		return &stepErr{"stat", err}
	}
	if err := s.makeScratch(os.TempDir()); err != nil {
		return err
	}
	if err := s.mkdirs("mnt"); err != nil {
		return err
	}
	mnt := filepath.Join(s.dir, "mnt")
	if err := s.attach(t.dir, mnt, nsfd, 0); err != nil {
		return err
	}
	want := mapped(real)
	if want == real {
		// Owned by the overflow ids already: the owner cannot tell; the
		// mount table still must.
		d["owner"], d["want"] = real.String(), want.String()
		return s.checkIdmapped(mnt, d)
	}
	if err := s.seeOwner(mnt, want, d); err != nil {
		return err
	}
	return s.checkIdmapped(mnt, d)
}

// overlayIdmap is containerd 2.x's question: does an overlay mounted over
// an idmapped (read-only) lower directory show the mapped owner? The
// overlay itself is not idmapped; that is a different question, whose
// answer is "no" even where this works (EINVAL on 6.18).
func (s *session) overlayIdmap(path string, nsfd int) Result {
	t, err := s.resolve(path)
	d := t.detail()
	if err != nil {
		return result(err, d)
	}
	s.describeFS(d, t.dir, t.mntID)
	err = s.makeScratch(t.workParent())
	if err != nil && notWritable(err) && t.workParent() != t.dir {
		err = s.makeScratch(t.dir)
	}
	if err != nil && notWritable(err) {
		// Not a verdict on idmap support: nothing can be written here.
		return Result{Reason: fmt.Sprintf("cannot create a scratch directory on %s: %v", t.dir, err), Detail: d}
	}
	if err != nil {
		return result(err, d)
	}
	if err := s.mkdirs("lower", "lowermap", "upper", "work", "merged"); err != nil {
		return result(err, d)
	}
	real, err := s.probeFile(filepath.Join(s.dir, "lower", "f"))
	if err != nil {
		return result(err, d)
	}
	// Relative overlay options: a path with ',' or ':' in it would need
	// escaping. The worker thread's cwd is its own (see privateMountNS).
	if err := s.step("chdir"); err != nil {
		return result(err, d)
	}
	if err := unix.Chdir(s.dir); err != nil {
		return result(&stepErr{"chdir", err}, d)
	}
	s.chdired = true
	if err := s.attach(filepath.Join(s.dir, "lower"), filepath.Join(s.dir, "lowermap"), nsfd, unix.MOUNT_ATTR_RDONLY); err != nil {
		return result(err, d)
	}
	// Read-only and index=off, as containerd builds its check mount.
	if err := s.mount("mount overlay", "overlay", filepath.Join(s.dir, "merged"), "overlay", unix.MS_RDONLY,
		"lowerdir=lowermap,upperdir=upper,workdir=work,index=off"); err != nil {
		return result(err, d)
	}
	return result(s.seeOwner(filepath.Join(s.dir, "merged", "f"), mapped(real), d), d)
}

// tmpfsIdmap mounts a fresh tmpfs (Kubernetes secrets, configmaps and
// memory-backed emptyDir are tmpfs) and idmaps it.
func (s *session) tmpfsIdmap(nsfd int) Result {
	d := map[string]string{"fstype": "tmpfs"}
	if err := s.makeScratch(os.TempDir()); err != nil {
		return result(err, d)
	}
	if err := s.mkdirs("fs", "mnt"); err != nil {
		return result(err, d)
	}
	fsDir, mnt := filepath.Join(s.dir, "fs"), filepath.Join(s.dir, "mnt")
	if err := s.mount("mount tmpfs", "tmpfs", fsDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=64k,mode=0700"); err != nil {
		return result(err, d)
	}
	real, err := s.probeFile(filepath.Join(fsDir, "f"))
	if err != nil {
		return result(err, d)
	}
	if err := s.attach(fsDir, mnt, nsfd, 0); err != nil {
		return result(err, d)
	}
	if err := s.seeOwner(filepath.Join(mnt, "f"), mapped(real), d); err != nil {
		return result(err, d)
	}
	return result(s.checkIdmapped(mnt, d), d)
}
