// Package snapshot captures a live host into a snapshot tree: every host
// file that `usernsctl check` used, the outputs of the commands it ran and
// the results of its probes, laid out as docs/snapshot.md describes, so
// that `check --root DIR` gives the same verdicts anywhere.
package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/probe"
	"github.com/usernsctl/usernsctl/internal/run"
)

// neverCopy lists host paths a snapshot must not contain even if a check
// read them: secrets have no place in a file operators attach to tickets.
var neverCopy = []string{
	"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
	"/etc/ssh", "/root/.ssh", "/etc/ssl/private", "/var/lib/kubelet/pki",
	"/etc/kubernetes/pki", "/etc/docker/certs.d", "/root/.docker",
}

func secret(p string) bool {
	for _, n := range neverCopy {
		if p == n || strings.HasPrefix(p, n+"/") {
			return true
		}
	}
	base, ext := path.Base(p), path.Ext(p)
	return ext == ".key" || ext == ".pem" || ext == ".crt" || strings.Contains(base, "kubeconfig") ||
		base == "admin.conf" || base == "kubelet.conf" || // kubeadm kubeconfigs
		strings.HasSuffix(p, "/.docker/config.json") // registry credentials
}

// Contents is what a capture gathered.
type Contents struct {
	Files    map[string]host.Access
	Commands map[string]run.Entry
	Probes   map[string]probe.Result
}

// Write lays out a snapshot tree in dir, which must not exist or be
// empty. It reads the files from src (the live host). Skipped lists paths
// left out on purpose (secrets); absent paths need no entry, their absence
// is reproduced by itself.
func Write(dir string, src *host.Host, c Contents) (skipped []string, err error) {
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(c.Files))
	for p := range c.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	meta := map[string]host.Meta{}
	for _, p := range paths {
		if secret(p) {
			skipped = append(skipped, p+" (never copied: may hold secrets)")
			continue
		}
		copied, err := copyOne(dir, src, p, c.Files[p])
		if err != nil {
			return skipped, fmt.Errorf("snapshot %s: %w", p, err)
		}
		// The tree's own modes and owners are the copier's; the host's
		// are recorded beside them (a checkout keeps neither).
		if fi, err := os.Stat(src.Path(p)); copied && err == nil {
			meta[p] = host.MetaOf(fi)
		}
	}
	if err := writeJSON(filepath.Join(dir, host.StatFile), meta); err != nil {
		return skipped, err
	}
	if err := writeJSON(filepath.Join(dir, run.CommandsFile), c.Commands); err != nil {
		return skipped, err
	}
	if err := writeJSON(filepath.Join(dir, probe.File), c.Probes); err != nil {
		return skipped, err
	}
	return skipped, nil
}

func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(ents) > 0:
		return fmt.Errorf("%s is not empty: a snapshot needs a new or empty directory", dir)
	}
	return nil
}

// copyOne reproduces one host path in the tree as deeply as it was used:
// bytes for a read, an empty stand-in with the same mode and capability
// xattr for a stat, the directory for a listing. Symlinks are followed so
// the tree never points back into the machine that reads it.
func copyOne(dir string, src *host.Host, p string, a host.Access) (bool, error) {
	real := src.Path(p)
	fi, err := os.Stat(real)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	dst := filepath.Join(dir, filepath.FromSlash(p))
	if fi.IsDir() {
		return true, os.MkdirAll(dst, 0o755)
	}
	if !fi.Mode().IsRegular() {
		// A link to /dev/null masks a file (sysctl.d, modprobe.d): keep the
		// mask as an empty file, which reads and masks the same way.
		if a == host.Read && fi.Mode()&fs.ModeCharDevice != 0 {
			return true, writeEmpty(dst)
		}
		return false, nil // sockets, block devices: nothing a check reads
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	var data []byte
	if a == host.Read {
		if data, err = os.ReadFile(real); err != nil {
			return false, err
		}
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		return false, err
	}
	// Setuid bits and file capabilities are what rootless checks look at.
	if err := os.Chmod(dst, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return false, err
	}
	if caps, err := getxattr(real, "security.capability"); err == nil && len(caps) > 0 {
		_ = unix.Lsetxattr(dst, "security.capability", caps, 0)
	}
	return true, nil
}

func writeEmpty(dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, nil, 0o644)
}

func getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := unix.Getxattr(p, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func writeJSON(p string, v any) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o644)
}
