package facts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/config/kconfig"
	"github.com/usernsctl/usernsctl/config/sysctl"
)

// KernelConfig is the running kernel's build configuration.
type KernelConfig struct {
	// Searched lists the candidate paths in search order.
	Searched []string
	// Path is the first candidate that exists, "" when none does.
	Path string
	// Config is nil when nothing was found or Path could not be parsed.
	Config *kconfig.Config
	// Err is why Path could not be read or parsed (with line and column).
	Err error
}

// KernelConfigOf finds and parses the kernel config the way the Kubernetes
// system-validators do: the first candidate that exists wins, even when it
// turns out to be unreadable, so that a broken file is reported rather than
// silently passed over.
func KernelConfigOf(env *checks.Env) *KernelConfig {
	return once(env, "kernel.config", func(env *checks.Env) *KernelConfig {
		kc := &KernelConfig{Searched: kconfig.Candidates(checks.KernelRelease(env))}
		for _, p := range kc.Searched {
			fi, err := env.Host.Stat(p)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			kc.Path = p
			switch {
			case err != nil:
				kc.Err = err
			case fi.IsDir():
				kc.Err = fmt.Errorf("%s is a directory, expected a kernel config file", p)
			default:
				kc.Config, kc.Err = parseKconfig(env, p)
			}
			return kc
		}
		return kc
	})
}

func parseKconfig(env *checks.Env, p string) (*kconfig.Config, error) {
	f, err := env.Host.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return kconfig.Parse(f, p)
}

// Sysctls is what the persistent sysctl files will apply at the next boot.
type Sysctls struct {
	// Set holds the parsed files in the order they are applied.
	Set *sysctl.Set
	// Aliases are sysctl.d entries that are /etc/sysctl.conf itself (the
	// Debian/Ubuntu 99-sysctl.conf link): counted once, as sysctl.conf.
	Aliases []string
	// Masked are entries linked to /dev/null (or dangling): they apply
	// nothing and hide files of the same name in later directories.
	Masked []string
	// Problems are lines skipped as systemd-sysctl skips them, and files
	// that could not be read (wholly or from some line on).
	Problems []error
}

// Lookup resolves one key.
func (s *Sysctls) Lookup(key string) sysctl.Result { return s.Set.Lookup(key) }

// SysctlsOf reads every sysctl.d directory and /etc/sysctl.conf in
// the order they are applied at boot.
func SysctlsOf(env *checks.Env) *Sysctls {
	return once(env, "sysctl.persisted", loadSysctls)
}

func loadSysctls(env *checks.Env) *Sysctls {
	s := &Sysctls{Set: &sysctl.Set{}}
	names := map[string][]string{}
	for _, dir := range sysctl.Dirs {
		ents, err := env.Host.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				s.Problems = append(s.Problems, err)
			}
			continue
		}
		for _, e := range ents {
			// Like systemd: regular files and links (even dangling ones,
			// which still mask) take part; directories and devices do not.
			if t := e.Type(); t.IsRegular() || t&fs.ModeSymlink != 0 {
				names[dir] = append(names[dir], e.Name())
			}
		}
	}
	conf, confInfo := readConf(env, s)
	for _, p := range sysctl.Order(names, conf != nil) {
		if p == sysctl.Conf {
			s.add(p, conf)
			continue
		}
		fi, err := env.Host.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			s.Masked = append(s.Masked, p)
			continue
		case err != nil:
			s.Problems = append(s.Problems, err)
			continue
		case fi.Mode()&fs.ModeCharDevice != 0:
			s.Masked = append(s.Masked, p) // -> /dev/null
			continue
		case confInfo != nil && os.SameFile(fi, confInfo):
			s.Aliases = append(s.Aliases, p)
			continue
		}
		b, err := env.Host.ReadFile(p)
		if err != nil {
			s.Problems = append(s.Problems, err)
			continue
		}
		// A snapshot copies the 99-sysctl.conf link as a file: identical
		// bytes are the same file for our purposes (sysctl.conf is applied
		// last anyway, so the outcome is the same).
		if conf != nil && len(b) > 0 && bytes.Equal(b, conf) {
			s.Aliases = append(s.Aliases, p)
			continue
		}
		s.add(p, b)
	}
	return s
}

func readConf(env *checks.Env, s *Sysctls) ([]byte, fs.FileInfo) {
	fi, err := env.Host.Stat(sysctl.Conf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		var b []byte
		if b, err = env.Host.ReadFile(sysctl.Conf); err == nil {
			if b == nil {
				b = []byte{}
			}
			return b, fi
		}
	}
	s.Problems = append(s.Problems, err)
	return nil, nil
}

func (s *Sysctls) add(p string, b []byte) {
	f, err := sysctl.Parse(bytes.NewReader(b), p)
	if err != nil {
		s.Problems = append(s.Problems, fmt.Errorf("%w (lines from there on are not applied)", err))
	}
	for _, pr := range f.Problems {
		s.Problems = append(s.Problems, pr)
	}
	s.Set.Files = append(s.Set.Files, f)
}

// LiveSysctl is the running value of a sysctl.
type LiveSysctl struct {
	Key, Path string
	// Value is the trimmed content of Path; "" when Err is set.
	Value string
	// Err is why Path could not be read (fs.ErrNotExist: the kernel has no
	// such key).
	Err error
}

// LiveSysctlOf reads the running value of a sysctl key from /proc/sys.
func LiveSysctlOf(env *checks.Env, key string) LiveSysctl {
	p := sysctl.ProcPath(key)
	return once(env, "sysctl.live."+path.Clean(p), func(env *checks.Env) LiveSysctl {
		b, err := env.Host.ReadFile(p)
		if err != nil {
			return LiveSysctl{Key: key, Path: p, Err: err}
		}
		return LiveSysctl{Key: key, Path: p, Value: strings.TrimSpace(string(b))}
	})
}
