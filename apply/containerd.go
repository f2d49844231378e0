package apply

import (
	"bytes"
	"context"
	"fmt"
	"path"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/containerd"
	"github.com/usernsctl/usernsctl/checks/facts"
	cdconfig "github.com/usernsctl/usernsctl/config/containerd"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/versions"
	"github.com/usernsctl/usernsctl/rules"
)

// Mode is an on/off/auto switch (--slow-chown, --metacopy).
type Mode string

// Modes.
const (
	Auto Mode = "auto"
	On   Mode = "on"
	Off  Mode = "off"
)

// ParseMode validates a --slow-chown or --metacopy value.
func ParseMode(flag, s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, On, Off:
		return m, nil
	}
	return "", fmt.Errorf("--%s %q: want auto, on or off", flag, s)
}

// metacopyFile persists overlay metacopy; 99- so that it is applied after
// distribution files (the last setting wins).
const metacopyFile = "/etc/modprobe.d/99-usernsctl-overlay.conf"

// planContainerd writes only what this host needs: on containerd 2.x
// whose overlayfs snapshotter would refuse user-namespaced pods, slow_chown
// (in a drop-in usernsctl owns, imported by the main config); on
// containerd 1.7, which always chowns, overlay metacopy.
func (a *applier) planContainerd(ctx context.Context, p *plan) error {
	c := facts.ContainerdConfigOf(ctx, p.env)
	if c.Err != nil {
		return inputErr(fmt.Errorf("%w\nnothing was written: fix the containerd config (`usernsctl check --target containerd` shows the same), then run apply again", c.Err))
	}
	if !c.Program.Known() {
		return &errs.Refusal{Reason: "containerd's version is unknown, so usernsctl cannot tell what it needs", Fix: fmt.Sprintf("install containerd (%s or later) and run apply again", rules.ContainerdIdmap)}
	}
	v := c.Program.Version
	switch {
	case v.AtLeast(rules.ContainerdIdmap.Value):
		return a.planSlowChown(ctx, p, c)
	case v.AtLeast(rules.ContainerdCRIUserns.Value):
		return a.planMetacopy(p)
	}
	return nil // ≤1.6 has no user namespace support for pods: the checks refuse it
}

// needSlowChown decides --slow-chown auto the way containerd.snapshotter
// judges the host (facts.Overlayfs): slow_chown only where containerd
// claims no remap-ids.
func (a *applier) needSlowChown(ctx context.Context, p *plan, c *facts.ContainerdConfig) (bool, string, error) {
	o := facts.OverlayfsOf(ctx, p.env)
	if cri := facts.CRIOf(ctx, p.env); cri != nil && cri.Err == nil {
		if snap, _, err := facts.HandlerSnapshotter(c.Config, cri.Default); err == nil && snap != cdconfig.DefaultSnapshotter && a.opts.SlowChown == Auto {
			return false, fmt.Sprintf("the CRI's default handler %q uses the %q snapshotter, not overlayfs", cri.Default.Name, snap), nil
		}
	}
	switch a.opts.SlowChown {
	case On:
		return true, "--slow-chown on", nil
	case Off:
		return false, "--slow-chown off", nil
	}
	switch o.Outcome(false) {
	case facts.RemapIdmapped:
		return false, o.ClaimedWhy, nil
	case facts.RemapRefused:
		return true, o.ClaimedWhy, nil
	}
	return true, o.ClaimedWhy + " (so the fallback is set to be safe)", nil
}

// snapshotterRefusal is containerd.snapshotter's failure when slow_chown
// does not fix it (remap-ids claimed but the idmapped overlay does not
// mount, a proxy snapshotter with only-remap-ids, erofs): apply would write
// something and the check would still fail, so it refuses.
func snapshotterRefusal(ctx context.Context, p *plan) error {
	for _, ck := range containerd.Checkers() {
		if ck.Info().ID != "containerd.snapshotter" {
			continue
		}
		r := ck.Check(ctx, p.env)
		if fixes, _ := r.Evidence["slow_chown_fixes"].(bool); r.Status == checks.Fail && !fixes {
			return &errs.Refusal{Reason: "containerd.snapshotter fails for a reason slow_chown does not fix: " + r.Message, Fix: r.Remedy + "; then run apply again"}
		}
	}
	return nil
}

func (a *applier) planSlowChown(ctx context.Context, p *plan, c *facts.ContainerdConfig) error {
	if err := snapshotterRefusal(ctx, p); err != nil {
		return err
	}
	need, why, err := a.needSlowChown(ctx, p, c)
	if err != nil {
		return err
	}
	var have bool
	if c.Config != nil {
		have, _, _ = c.Config.SlowChown()
	}
	ours, err := p.get(cdconfig.DropInPath)
	if err != nil {
		return inputErr(err)
	}
	if need == have && (ours == nil || need) {
		return nil // already in effect (or not needed and not ours to undo)
	}
	if !need && ours == nil {
		return nil
	}
	main, err := p.get(c.Path)
	if err != nil {
		return inputErr(err)
	}
	version := facts.ContainerdConfigVersion(c.Program.Version)
	var newMain []byte
	if main == nil {
		if newMain, err = cdconfig.NewMain(version, cdconfig.DropInPath); err != nil {
			return err
		}
		p.note("create %s (version %d) so that containerd reads its drop-in (it ignores drop-ins without a main config)", c.Path, version)
	} else {
		f, perr := cdconfig.Parse(bytes.NewReader(main), c.Path)
		if perr != nil {
			return inputErr(perr)
		}
		if f.Version == 0 {
			return inputErr(fmt.Errorf("%s: %w", c.Path, cdconfig.ErrNoVersion))
		}
		version = f.Version
		var changed bool
		if newMain, changed, err = cdconfig.AddImport(main, c.Path, cdconfig.DropInPath); err != nil {
			return inputErr(err)
		}
		if changed {
			p.note("add %s to the imports of %s (no other byte changes)", cdconfig.DropInPath, c.Path)
		}
	}
	dropIn, err := cdconfig.DropIn{Version: version, SlowChown: need, Why: why}.Render()
	if err != nil {
		return err
	}
	p.set(cdconfig.DropInPath, dropIn, 0o644)
	p.set(c.Path, newMain, 0o644)
	if need {
		p.note("set slow_chown = true for the overlayfs snapshotter in %s: %s; cost: every image is chowned per pod (disk and start-up time)", cdconfig.DropInPath, why)
	} else {
		p.note("drop slow_chown from %s: %s", cdconfig.DropInPath, why)
	}
	p.restart("containerd")
	if p.env.Host.Live() && p.env.Run.Installed(versions.Containerd) {
		mainPath := c.Path
		a.confirm = append(a.confirm, func() error { return a.confirmDump(ctx, mainPath, need) })
	}
	return nil
}

// confirmDump asks containerd itself what it will use: `containerd config
// dump` merges the main file and its imports exactly as the daemon will.
func (a *applier) confirmDump(ctx context.Context, mainPath string, want bool) error {
	out, err := a.runner.Run(ctx, versions.Containerd, "--config", mainPath, "config", "dump")
	if err != nil {
		return fmt.Errorf("containerd config dump: %w", err)
	}
	f, err := cdconfig.Parse(bytes.NewReader(out.Stdout), "containerd config dump")
	if err != nil {
		return fmt.Errorf("containerd config dump: %w", err)
	}
	plugins, _ := f.Tree["plugins"].(map[string]any)
	ovl, _ := plugins[cdconfig.PluginOverlayfs].(map[string]any)
	got, _ := ovl["slow_chown"].(bool)
	if got != want {
		return fmt.Errorf("containerd config dump shows slow_chown = %v for the overlayfs snapshotter, want %v: containerd does not read the drop-in", got, want)
	}
	return nil
}

func (a *applier) planMetacopy(p *plan) error {
	m := facts.MetacopyOf(p.env)
	ours, err := p.get(metacopyFile)
	if err != nil {
		return inputErr(err)
	}
	if a.opts.Metacopy == Off {
		if ours != nil {
			p.set(metacopyFile, nil, 0)
			p.note("remove %s (--metacopy off); the live parameter is left as it is", metacopyFile)
		}
		return nil
	}
	if m.Persisted != nil && !m.Persisted.On && (m.Persisted.Where == "/proc/cmdline" || path.Base(fileOf(m.Persisted.Where)) > path.Base(metacopyFile)) {
		return &errs.Refusal{
			Reason: fmt.Sprintf("overlay metacopy is turned off in %s, which applies after %s", m.Persisted.Where, metacopyFile),
			Fix:    "remove that setting (or set metacopy=on there), then run apply again",
		}
	}
	if m.Persisted == nil || !m.Persisted.On || ours != nil {
		want := []byte("# Managed by usernsctl (containerd 1.x chowns a copy of every image per\n# user namespace; metacopy copies inodes, not data). Removed by usernsctl revert.\noptions overlay metacopy=on\n")
		if !bytes.Equal(ours, want) {
			p.set(metacopyFile, want, 0o644)
			p.note("persist overlay metacopy=on in %s: containerd 1.x chowns a copy of every image per user namespace; with metacopy it copies inodes, not data. It affects every overlay mount on the host", metacopyFile)
		}
	}
	if m.Live == "N" {
		p.live = append(p.live, LiveChange{Path: facts.MetacopyPath, Before: "N", Value: "Y",
			Why: "overlay metacopy for new mounts now, without a reboot"})
	} else if m.LiveErr != nil {
		p.note("the overlay module is not loaded (%v): metacopy applies when it loads", m.LiveErr)
	}
	return nil
}

// fileOf is the file of a "FILE line N" location.
func fileOf(where string) string {
	for i := len(where) - 1; i > 0; i-- {
		if where[i] == ' ' && i >= 5 && where[i-5:i] == " line" {
			return where[:i-5]
		}
	}
	return where
}
