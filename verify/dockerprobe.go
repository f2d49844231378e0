package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/verify/procfs"
)

// ProbeRequest is what the probe needs to know: the host ids container
// root should map to (-1 when unknown), so that the bind-mount directory
// can be private to it.
type ProbeRequest struct {
	UID, GID int64
	Timeout  time.Duration
}

// Probe is a running probe container.
type Probe struct {
	// Name is the container's name, Image its image, ID the container ID.
	Name, Image, ID string
	Nonce           string
	PID             int
	// BindDir is the host directory mounted at /probe; BindParent the
	// directory it was made in.
	BindDir, BindParent string
	File                ProbeFile
	// Steps are the commands run, for evidence.
	Steps []string
}

// ProbeFile is what the probe's root wrote into the bind mount, as the
// host sees it.
type ProbeFile struct {
	Path     string
	UID, GID uint32
	// Err is why the file is missing or not ours.
	Err error
}

// ProbeStarter starts a probe container. cleanup is non-nil whenever
// anything may have been created, even when err is not nil; it removes
// the container, the image and the directories, and is safe to call once.
type ProbeStarter func(ctx context.Context, env *checks.Env, req ProbeRequest) (p *Probe, cleanup func(context.Context) error, err error)

// probeMount is where the bind mount appears inside the probe.
const probeMount = "/probe"

// probeFileName is the file the probe's root writes.
const probeFileName = "written-by-container-root"

// probeLabel marks everything verify creates, for `docker ps -a --filter
// label=usernsctl.verify` should a cleanup ever be cut short (SIGKILL).
const probeLabel = "usernsctl.verify"

// LiveProbe makes the probe for real through env.Run: a tar holding this
// very binary (/proc/self/exe) is `docker import`ed with an ENTRYPOINT of
// the hidden verify-child command, then run with --network none and a
// private bind mount; the child writes a file as container root and waits.
func LiveProbe(ctx context.Context, env *checks.Env, req ProbeRequest) (*Probe, func(context.Context) error, error) {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nonce, err := newNonce()
	if err != nil {
		return nil, nil, err
	}
	p := &Probe{Nonce: nonce, Name: "usernsctl-verify-" + nonce, Image: "usernsctl-verify:" + nonce}
	c := &cleaner{env: env}

	exe, err := selfBinary()
	if err != nil {
		return p, nil, err
	}
	defer exe.Close()
	work, err := os.MkdirTemp("", "usernsctl-verify-")
	if err != nil {
		return p, nil, fmt.Errorf("temporary directory: %w", err)
	}
	c.dirs = append(c.dirs, work)
	tarPath := filepath.Join(work, "image.tar")
	if err := writeImageTar(tarPath, exe); err != nil {
		return p, c.run, err
	}
	if p.BindParent, err = bindParent(); err != nil {
		return p, c.run, err
	}
	if p.BindDir, err = os.MkdirTemp(p.BindParent, "usernsctl-verify-bind-"); err != nil {
		return p, c.run, fmt.Errorf("bind-mount directory: %w", err)
	}
	c.dirs = append(c.dirs, p.BindDir)
	// 0700 and owned by the ids container root should map to: private to
	// host root and the probe's root.
	if req.UID >= 0 && req.GID >= 0 {
		if err := os.Chown(p.BindDir, int(req.UID), int(req.GID)); err != nil {
			return p, c.run, fmt.Errorf("bind-mount directory: %w", err)
		}
	}

	docker := func(args ...string) (run.Output, error) {
		argv := append([]string{"docker"}, args...)
		p.Steps = append(p.Steps, run.Line(argv))
		out, err := env.Run.Run(ctx, argv...)
		if err != nil {
			if ctx.Err() != nil {
				return out, fmt.Errorf("%s: %w", run.Line(argv), ctx.Err())
			}
			return out, cmdErr(err)
		}
		return out, nil
	}
	// Registered before the command: an interrupted CLI may leave the
	// daemon finishing the job.
	c.image = p.Image
	entry := fmt.Sprintf(`ENTRYPOINT ["/usernsctl", %q]`, ChildCommand)
	if _, err := docker("import", "--change", entry, "--message", "usernsctl verify probe", tarPath, p.Image); err != nil {
		return p, c.run, err
	}
	c.container = p.Name
	out, err := docker("run", "--detach", "--name", p.Name, "--label", probeLabel+"="+nonce,
		"--network", "none", "--user", "0:0", "--volume", p.BindDir+":"+probeMount+":z",
		p.Image, probeMount, nonce)
	if err != nil {
		return p, c.run, err
	}
	p.ID = strings.TrimSpace(string(out.Stdout))
	out, err = docker("inspect", "--type", "container", p.Name)
	if err != nil {
		return p, c.run, err
	}
	var st []struct {
		State struct {
			Pid    int
			Status string
		}
	}
	if err := json.Unmarshal(out.Stdout, &st); err != nil || len(st) != 1 {
		return p, c.run, fmt.Errorf("`docker inspect %s` printed no container: %v", p.Name, err)
	}
	if p.PID = st[0].State.Pid; p.PID <= 0 {
		return p, c.run, fmt.Errorf("the probe container is %s: %s", st[0].State.Status, logs(ctx, env, p.Name))
	}
	p.File = waitFile(ctx, env, p)
	return p, c.run, nil
}

// waitFile waits until the probe's file appears, the probe dies, or ctx
// ends, and reads the file's owner as the host sees it.
func waitFile(ctx context.Context, env *checks.Env, p *Probe) ProbeFile {
	f := ProbeFile{Path: filepath.Join(p.BindDir, probeFileName)}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// The probe's own scratch file, not a host config path: read
		// directly.
		if fi, err := os.Lstat(f.Path); err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok || !fi.Mode().IsRegular() {
				f.Err = fmt.Errorf("%s is not a regular file", f.Path)
				return f
			}
			f.UID, f.GID = st.Uid, st.Gid
			b, err := os.ReadFile(f.Path)
			if err != nil || !bytes.Contains(b, []byte("nonce "+p.Nonce+"\n")) {
				f.Err = fmt.Errorf("%s does not hold this probe's nonce: %v", f.Path, err)
			}
			return f
		}
		if !env.Host.Exists(procfs.Dir(p.PID)) {
			f.Err = fmt.Errorf("the probe exited without writing it: %s", logs(context.WithoutCancel(ctx), env, p.Name))
			return f
		}
		select {
		case <-ctx.Done():
			f.Err = fmt.Errorf("no file after waiting: %w", ctx.Err())
			return f
		case <-tick.C:
		}
	}
}

func logs(ctx context.Context, env *checks.Env, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := env.Run.Run(ctx, "docker", "logs", "--tail", "5", name)
	s := strings.TrimSpace(string(out.Stderr) + "\n" + string(out.Stdout))
	if err != nil && s == "" {
		return "`docker logs` failed: " + cmdErr(err).Error()
	}
	if s == "" {
		return "it printed nothing"
	}
	return "it said: " + strings.Join(strings.Fields(s), " ")
}

// cleaner undoes what the probe made, newest first.
type cleaner struct {
	env              *checks.Env
	container, image string
	dirs             []string
	done             bool
}

func (c *cleaner) run(ctx context.Context) error {
	if c.done {
		return nil
	}
	c.done = true
	var errs []error
	rm := func(gone string, argv ...string) {
		_, err := c.env.Run.Run(ctx, argv...)
		if err != nil && !strings.Contains(cmdErr(err).Error(), gone) {
			errs = append(errs, cmdErr(err))
		}
	}
	if c.container != "" {
		rm("No such container", "docker", "rm", "--force", "--volumes", c.container)
	}
	if c.image != "" {
		rm("No such image", "docker", "rmi", "--force", c.image)
	}
	for i := len(c.dirs) - 1; i >= 0; i-- {
		if err := os.RemoveAll(c.dirs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func newNonce() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// selfBinary opens this program's own file, which must be static: the
// image holds nothing else, no loader and no libraries.
func selfBinary() (*os.File, error) {
	const self = "/proc/self/exe"
	f, err := os.Open(self)
	if err != nil {
		return nil, fmt.Errorf("open this program's binary: %w", err)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not an ELF binary: %w", self, err)
	}
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(prog.Open(), 256))
			name, _ := os.Readlink(self)
			f.Close()
			return nil, fmt.Errorf("this usernsctl binary (%s) is dynamically linked (loader %s): the probe image holds only this binary, so it must be static; build it with CGO_ENABLED=0",
				name, strings.TrimRight(string(interp), "\x00"))
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// writeImageTar writes a root file system holding the binary as
// /usernsctl and the directories a runtime mounts over.
func writeImageTar(path string, exe *os.File) error {
	fi, err := exe.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("probe image: %w", err)
	}
	tw := tar.NewWriter(out)
	mtime := time.Unix(0, 0)
	for _, d := range []struct {
		name string
		mode int64
	}{{"dev/", 0o755}, {"etc/", 0o755}, {"proc/", 0o555}, {"sys/", 0o555}, {"tmp/", 0o1777}, {"probe/", 0o755}} {
		if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: mtime}); err != nil {
			break
		}
	}
	if err == nil {
		err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usernsctl", Mode: 0o755, Size: fi.Size(), ModTime: mtime})
	}
	if err == nil {
		var n int64
		n, err = io.Copy(tw, exe)
		if err == nil && n != fi.Size() {
			err = fmt.Errorf("copied %d of %d bytes of this binary", n, fi.Size())
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("probe image %s: %w", path, err)
	}
	return nil
}

// bindParent is where the bind-mount directory goes: the temporary
// directory, whose every ancestor the remapped root must be able to search
// (it is "other" to them: field case 17).
func bindParent() (string, error) {
	dir, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		return "", fmt.Errorf("temporary directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return "", err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return "", fmt.Errorf("%s (mode %v) is not searchable by other users, so the remapped root could not reach a bind mount under %s (a bind-mount source under a 0700 directory gives `permission denied`): set TMPDIR to a directory such as /tmp", d, fi.Mode().Perm(), dir)
		}
		if d == "/" {
			return dir, nil
		}
	}
}
