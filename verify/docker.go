package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/internal/run"
	"github.com/usernsctl/usernsctl/verify/procfs"
)

// applyDocker is the remedy that configures remap and restarts dockerd.
const applyDocker = "`usernsctl apply --target docker --restart`, then run `usernsctl verify --target docker` again"

// dockerInfo is the part of `docker info --format '{{json .}}'` verify reads.
type dockerInfo struct {
	ServerVersion   string
	SecurityOptions []string
	DockerRootDir   string
	ServerErrors    []string
}

func (i *dockerInfo) userns() bool {
	for _, o := range i.SecurityOptions {
		if o == "name=userns" {
			return true
		}
	}
	return false
}

// dockerVerify holds what the Docker checks judge, gathered by prepare
// before they run: the probe container lives only as long as it takes to
// read it.
type dockerVerify struct {
	env  *checks.Env
	opts Options

	info    *dockerInfo
	infoErr error
	remote  string // why DOCKER_HOST is not this host; "" when local

	expect *Expect
	named  []*Subject

	probeSkip  string // why no probe ran
	probe      *Probe
	probeErr   error
	probeSubj  *Subject
	cleanupErr error
	cleaned    bool
}

// prepare asks dockerd, resolves the named containers, and runs the probe
// container from start to removal. It fails only when interrupted.
func (d *dockerVerify) prepare(ctx context.Context) error {
	env := d.env
	d.remote = remoteHost(d.opts.DockerHost)
	d.info, d.infoErr = loadDockerInfo(ctx, env)
	d.expect = DockerExpect(ctx, env)
	for _, pid := range d.opts.PIDs {
		d.named = append(d.named, &Subject{PID: pid, Via: "--pid"})
	}
	for _, id := range d.opts.Containers {
		d.named = append(d.named, resolveDocker(ctx, env, id))
	}
	for _, s := range d.named {
		s.observe(env)
	}

	switch {
	case d.opts.StartProbe == nil && !env.Host.Live():
		d.probeSkip = "a snapshot (--root) cannot start a container: only --pid and --container subjects are judged"
	case d.opts.StartProbe == nil:
		d.probeSkip = "no probe container was requested"
	case d.infoErr != nil:
		d.probeSkip = "dockerd does not answer (see verify.docker.daemon)"
	case d.remote != "":
		d.probeSkip = "dockerd is not on this host (see verify.docker.daemon)"
	}
	if d.probeSkip != "" {
		return nil
	}
	req := ProbeRequest{UID: -1, GID: -1, Timeout: d.opts.ProbeTimeout}
	if rs := d.expect.UID; len(rs) > 0 {
		req.UID = int64(rs[0].Start)
	}
	if rs := d.expect.GID; len(rs) > 0 {
		req.GID = int64(rs[0].Start)
	}
	d.runProbe(ctx, req)
	if ctx.Err() != nil {
		if d.cleanupErr != nil {
			return fmt.Errorf("%w; cleaning up the probe failed: %v", ErrInterrupted, d.cleanupErr)
		}
		return fmt.Errorf("%w; the probe container, image and directories were removed", ErrInterrupted)
	}
	return nil
}

// runProbe starts the probe, reads its /proc entries while it runs, and
// removes it: deferred, so that nothing between start and removal (a
// panic included) can leave it behind; on a fresh context, so that an
// interrupt does not stop the removal.
func (d *dockerVerify) runProbe(ctx context.Context, req ProbeRequest) {
	p, cleanup, err := d.opts.StartProbe(ctx, d.env, req)
	if cleanup != nil {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			d.cleanupErr = cleanup(cctx)
			d.cleaned = true
		}()
	}
	d.probe, d.probeErr = p, err
	if p != nil && p.PID > 0 {
		d.probeSubj = &Subject{PID: p.PID, Container: p.Name, Via: "probe", Probe: true}
		d.probeSubj.observe(d.env)
	}
}

// subjects are the processes the map checks judge: the probe first.
func (d *dockerVerify) subjects() []*Subject {
	var out []*Subject
	if d.probeSubj != nil {
		out = append(out, d.probeSubj)
	}
	return append(out, d.named...)
}

func (d *dockerVerify) checkers() []checks.Checker {
	t := []checks.Target{checks.Docker}
	return []checks.Checker{
		checks.New(checks.Info{ID: "verify.docker.daemon", Title: "dockerd answers on this host", Targets: t,
			Doc: "`docker info` answers (DOCKER_HOST honoured) from a daemon on this host: verify reads its containers' /proc entries."}, d.checkDaemon),
		checks.New(checks.Info{ID: "verify.docker.userns_active", Title: "dockerd runs with userns-remap", Targets: t,
			Doc: "`docker info` lists name=userns among its security options."}, d.checkActive),
		checks.New(checks.Info{ID: "verify.docker.data_root", Title: "remapped data root", Targets: t,
			Doc: "dockerd's data root is <data-root>/<uid>.<gid> for the remap user's first ranges."}, d.checkDataRoot),
		checks.New(checks.Info{ID: "verify.docker.probe_container", Title: "fresh probe container", Targets: t,
			Doc: "A fresh container from an image of this binary (docker import, no registry), --network none, runs and writes into a private bind mount."}, d.checkProbe),
		checks.New(checks.Info{ID: "verify.docker.userns", Title: "container in its own user namespace", Targets: t,
			Doc: "The probe (and each --pid/--container) runs in a user namespace other than its runtime's (its containerd shim), by /proc/PID/ns/user inode."}, d.checkUserns),
		checks.New(checks.Info{ID: "verify.docker.uid_map", Title: "uid_map starts at the remap user's range", Targets: t,
			Doc: "/proc/PID/uid_map is exactly the remap user's /etc/subuid ranges from container id 0; the identity map means user namespaces are off."}, d.mapChecker(false)),
		checks.New(checks.Info{ID: "verify.docker.gid_map", Title: "gid_map starts at the remap user's range", Targets: t,
			Doc: "/proc/PID/gid_map is exactly the remap user's /etc/subgid ranges from container id 0."}, d.mapChecker(true)),
		checks.New(checks.Info{ID: "verify.docker.bind_owner", Title: "container root owns its files as the mapped id", Targets: t,
			Doc: "A file the probe's root writes into a bind mount is owned on the host by the mapped uid and gid."}, d.checkBindOwner),
		checks.New(checks.Info{ID: "verify.docker.cleanup", Title: "probe removed", Targets: t,
			Doc: "The probe container, its image and its temporary directories are gone."}, d.checkCleanup),
	}
}

func loadDockerInfo(ctx context.Context, env *checks.Env) (*dockerInfo, error) {
	out, err := env.Run.Run(ctx, "docker", "info", "--format", "{{json .}}")
	var info dockerInfo
	if jerr := json.Unmarshal(out.Stdout, &info); jerr == nil && info.ServerVersion != "" && err == nil {
		return &info, nil
	}
	switch {
	case run.IsNotFound(err):
		return nil, err
	case len(info.ServerErrors) > 0:
		return nil, errors.New(strings.Join(info.ServerErrors, "; "))
	case err != nil:
		var rerr *run.Error
		if errors.As(err, &rerr) {
			if s := strings.TrimSpace(string(rerr.Output.Stderr)); s != "" {
				return nil, errors.New(firstLine(s))
			}
		}
		return nil, err
	}
	return nil, fmt.Errorf("`docker info` printed no server version: %q", firstLine(string(out.Stdout)))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// remoteHost says why DOCKER_HOST names another machine; "" for a local
// socket (unix://, fd://, or TCP on loopback).
func remoteHost(h string) string {
	if h == "" {
		return ""
	}
	u, err := url.Parse(h)
	if err != nil {
		return fmt.Sprintf("DOCKER_HOST %q does not parse: %v", h, err)
	}
	switch u.Scheme {
	case "unix", "fd", "":
		return ""
	case "tcp", "http", "https":
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return ""
		}
	}
	return fmt.Sprintf("DOCKER_HOST is %s", h)
}

func (d *dockerVerify) where() string {
	if d.opts.DockerHost != "" {
		return "DOCKER_HOST " + d.opts.DockerHost
	}
	return "the default socket"
}

func (d *dockerVerify) checkDaemon(context.Context, *checks.Env) checks.Result {
	switch {
	case run.IsNotFound(d.infoErr):
		return checks.Failf("install the docker CLI (Debian/Ubuntu: `apt-get install docker.io`)",
			"the docker CLI is not installed: verify asks dockerd through it")
	case d.infoErr != nil:
		return checks.Failf("start dockerd (`systemctl start docker`), or set DOCKER_HOST to the socket it listens on, and run verify again",
			"dockerd does not answer at %s: %v", d.where(), d.infoErr).With("docker_host", d.opts.DockerHost)
	case d.remote != "":
		return checks.Failf("run usernsctl verify on the Docker host itself, with DOCKER_HOST unset or a unix:// socket",
			"%s: verify reads the containers' /proc entries, so it must run on the daemon's own host", d.remote).With("docker_host", d.opts.DockerHost)
	}
	return checks.Passf("dockerd %s answers at %s", d.info.ServerVersion, d.where()).
		With("version", d.info.ServerVersion).With("docker_host", d.opts.DockerHost)
}

func (d *dockerVerify) checkActive(_ context.Context, env *checks.Env) checks.Result {
	if d.infoErr != nil {
		return checks.Skipf("dockerd does not answer (see verify.docker.daemon)")
	}
	opts := strings.Join(d.info.SecurityOptions, " ")
	if d.info.userns() {
		return checks.Passf("`docker info` lists name=userns among its security options (%s)", opts).With("security_options", d.info.SecurityOptions)
	}
	remedy := applyDocker
	if set := facts.DockerRemapSettingOf(env); set.Err == nil && set.Value != "" {
		remedy = fmt.Sprintf("userns-remap %q is set in %s but dockerd has not read it: restart dockerd (`systemctl restart docker`)", set.Value, set.Where)
	}
	return checks.Failf(remedy, "`docker info` lists no name=userns (security options: %s): dockerd runs without userns-remap, so containers run as host root",
		orNone(opts)).With("security_options", d.info.SecurityOptions)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (d *dockerVerify) checkDataRoot(_ context.Context, env *checks.Env) checks.Result {
	switch {
	case d.infoErr != nil:
		return checks.Skipf("dockerd does not answer (see verify.docker.daemon)")
	case !d.info.userns():
		return checks.Skipf("dockerd runs without userns-remap (see verify.docker.userns_active): its data root %s is not remapped", d.info.DockerRootDir)
	case d.expect.Err != nil:
		return checks.Failf("fix the file named, then run verify again", "cannot read the remap user's ranges: %v", d.expect.Err)
	case len(d.expect.UID) == 0 || len(d.expect.GID) == 0:
		return checks.Failf(applyDocker, "%s; %s: dockerd cannot be using them", d.expect.describe(false), d.expect.describe(true))
	}
	got := d.info.DockerRootDir
	base := path.Base(got)
	want := fmt.Sprintf("%d.%d", d.expect.UID[0].Start, d.expect.GID[0].Start)
	alt := fmt.Sprintf("%d.%d", sortedRanges(d.expect.UID)[0].Start, sortedRanges(d.expect.GID)[0].Start)
	r := checks.Result{}
	if base == want || base == alt {
		r = checks.Passf("dockerd keeps its data in %s: the remapped root for %s and %s", got, d.expect.describe(false), d.expect.describe(true))
	} else {
		r = checks.Failf("restart dockerd so that it maps the ranges now in /etc/subuid and /etc/subgid (`systemctl restart docker`)",
			"dockerd's data root is %s, not %s/%s for %s and %s: dockerd maps other ranges than the files give (they changed after it started?)",
			got, path.Dir(got), want, d.expect.describe(false), d.expect.describe(true))
	}
	if root, src := facts.DockerDataRootOf(env); src != "default" && path.Dir(got) != root {
		r.Message += fmt.Sprintf("\nnote: the configured data root is %s (%s), but dockerd reports %s", root, src, path.Dir(got))
	}
	return r.With("docker_root_dir", got).With("want", want)
}

func (d *dockerVerify) checkProbe(context.Context, *checks.Env) checks.Result {
	if d.probeSkip != "" {
		return checks.Skipf("%s", d.probeSkip)
	}
	p := d.probe
	ev := func(r checks.Result) checks.Result {
		if p != nil {
			r = r.With("image", p.Image).With("container", p.Name).With("pid", p.PID).With("steps", p.Steps)
		}
		return r
	}
	if d.probeErr != nil {
		return ev(checks.Failf("fix what the message names and run verify again; `docker run --rm --network none IMAGE` by hand shows dockerd's own error",
			"the probe container did not run: %v", d.probeErr))
	}
	s := d.probeSubj
	if s == nil || s.Err != nil {
		err := errors.New("no pid")
		if s != nil {
			err = s.Err
		}
		return ev(checks.Failf("run usernsctl verify on dockerd's own host",
			"docker inspect gave pid %d for the probe, but it cannot be read here: %v", p.PID, err))
	}
	if !probeCmdline(s.Proc.Cmdline, p.Nonce) {
		return ev(checks.Failf("run usernsctl verify on dockerd's own host (DOCKER_HOST must name a local socket)",
			"docker inspect gave pid %d for the probe, but /proc/%d runs %q, not this probe: dockerd is not on this host, or the pid was reused",
			p.PID, p.PID, strings.Join(s.Proc.Cmdline, " ")))
	}
	return ev(checks.Passf("probe container %s (image %s, imported from this usernsctl binary; --network none) runs as %s",
		p.Name, p.Image, s.Proc.Chain()))
}

// probeCmdline: the process is our child with our nonce.
func probeCmdline(argv []string, nonce string) bool {
	if len(argv) < 2 || argv[1] != ChildCommand {
		return false
	}
	for _, a := range argv[2:] {
		if a == nonce {
			return true
		}
	}
	return false
}

func (d *dockerVerify) noSubjects() (checks.Result, bool) {
	ss := d.subjects()
	for _, s := range ss {
		if s.Proc != nil {
			return checks.Result{}, false
		}
	}
	var errs []string
	for _, s := range ss {
		if s.Err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", s.Label(), s.Err))
		}
	}
	if len(errs) > 0 {
		return checks.Failf("name a running container (`docker ps`)", "%s", strings.Join(errs, "\n")), true
	}
	why := d.probeSkip
	if why == "" {
		why = "the probe container did not run (see verify.docker.probe_container)"
	}
	return checks.Skipf("no container to judge: %s", why), true
}

func (d *dockerVerify) checkUserns(_ context.Context, env *checks.Env) checks.Result {
	if r, none := d.noSubjects(); none {
		if r.Status == checks.Skip {
			// A verify that looked at no container proved nothing.
			r.Status = checks.Fail
			r.Message = "nothing was verified: " + strings.TrimPrefix(r.Message, "no container to judge: ")
			r.Remedy = "run verify on the live host as root (it starts its own probe container), or name a running container with --container or --pid"
		}
		return r
	}
	r := judgeUserns(env, d.subjects(), nil, func(bad []*Subject) string {
		if r := hostnsRemedy(bad); r != "" {
			return r
		}
		if d.info != nil && !d.info.userns() {
			return applyDocker
		}
		return "restart dockerd with userns-remap in effect (`systemctl restart docker`) and recreate the container"
	})
	return d.withUnresolved(r)
}

// withUnresolved adds named containers that could not be read.
func (d *dockerVerify) withUnresolved(r checks.Result) checks.Result {
	var errs []string
	for _, s := range d.named {
		if s.Err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", s.Label(), s.Err))
		}
	}
	if len(errs) == 0 {
		return r
	}
	r.Message += "\n" + strings.Join(errs, "\n")
	if r.Status == checks.Pass {
		r.Status, r.Remedy = checks.Fail, "name a running container (`docker ps`) or a live pid"
	}
	return r
}

func (d *dockerVerify) mapChecker(gid bool) func(context.Context, *checks.Env) checks.Result {
	return func(_ context.Context, env *checks.Env) checks.Result {
		if r, none := d.noSubjects(); none {
			return r
		}
		if d.expect.Err != nil {
			return checks.Failf("fix the file named, then run verify again", "cannot read the remap user's ranges: %v", d.expect.Err)
		}
		remedy := hostnsRemedy(d.subjects())
		if remedy == "" {
			remedy = "restart dockerd so that it maps the remap user's current ranges (`systemctl restart docker`); check that userns-remap names the user you expect (now " +
				d.expect.Owner + ", from " + d.expect.Source + ")"
		}
		if d.info != nil && !d.info.userns() {
			remedy = applyDocker
		}
		r := judgeDockerMap(env, d.subjects(), d.expect, gid, remedy)
		if n := selfNested(env); n != "" {
			r.Message += "\nnote: " + n
		}
		return d.withUnresolved(r)
	}
}

func (d *dockerVerify) checkBindOwner(context.Context, *checks.Env) checks.Result {
	if d.probeSkip != "" {
		return checks.Skipf("%s", d.probeSkip)
	}
	if d.probe == nil || d.probeSubj == nil || d.probeSubj.Proc == nil {
		return checks.Skipf("the probe container did not run (see verify.docker.probe_container)")
	}
	f, p := d.probe.File, d.probeSubj.Proc
	ev := func(r checks.Result) checks.Result {
		return r.With("file", f.Path).With("uid", f.UID).With("gid", f.GID)
	}
	if f.Err != nil {
		return ev(checks.Failf("make sure the remapped root can write to a bind mount under "+d.probe.BindParent+" (every directory above it needs o+x, or the remapped root cannot reach the mount: `permission denied`)",
			"the probe's root could not write %s: %v", f.Path, f.Err))
	}
	wantU, okU := procfsOutside(p.UIDMap, p.UIDErr)
	wantG, okG := procfsOutside(p.GIDMap, p.GIDErr)
	var bad []string
	if !okU || uint64(f.UID) != wantU {
		bad = append(bad, fmt.Sprintf("uid %d (uid_map maps container root to %s)", f.UID, orUnmapped(wantU, okU)))
	}
	if !okG || uint64(f.GID) != wantG {
		bad = append(bad, fmt.Sprintf("gid %d (gid_map maps container root to %s)", f.GID, orUnmapped(wantG, okG)))
	}
	if len(bad) > 0 {
		return ev(checks.Failf(applyDocker, "a file written by the probe's root into a bind mount is owned on the host by %s", strings.Join(bad, " and ")))
	}
	if f.UID == 0 || f.GID == 0 {
		return ev(checks.Failf(applyDocker, "a file written by the probe's root into a bind mount is owned on the host by %d:%d: container root is host root; %s", f.UID, f.GID, identityMsg))
	}
	return ev(checks.Passf("a file written by the probe's root into a bind mount (%s) is owned on the host by %d:%d, the mapped ids", f.Path, f.UID, f.GID))
}

func procfsOutside(m []procfs.IDMap, err error) (uint64, bool) {
	if err != nil {
		return 0, false
	}
	return procfs.ToOutside(m, 0)
}

func orUnmapped(v uint64, ok bool) string {
	if !ok {
		return "nothing readable"
	}
	return fmt.Sprint(v)
}

func (d *dockerVerify) checkCleanup(context.Context, *checks.Env) checks.Result {
	switch {
	case d.probeSkip != "":
		return checks.Skipf("%s", d.probeSkip)
	case !d.cleaned:
		return checks.Skipf("nothing was created")
	case d.cleanupErr != nil:
		rem := "remove what is left by hand"
		if d.probe != nil {
			rem = fmt.Sprintf("`docker rm -f %s; docker rmi %s`, and remove the directories named", d.probe.Name, d.probe.Image)
		}
		return checks.Failf(rem, "the probe could not be removed completely: %v", d.cleanupErr)
	}
	if d.probe == nil {
		return checks.Passf("everything the probe created before it failed was removed")
	}
	return checks.Passf("probe container %s, image %s and the temporary directories were removed", d.probe.Name, d.probe.Image)
}

// hostnsRemedy is the fix when a named container asked for the host's
// user namespace; "" when none did.
func hostnsRemedy(ss []*Subject) string {
	for _, s := range ss {
		if s.UsernsMode == "host" {
			return fmt.Sprintf("recreate %s without --userns=host; a container that needs the host's namespaces belongs on a daemon without remap", s.Label())
		}
	}
	return ""
}
