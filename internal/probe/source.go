package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/usernsctl/usernsctl/internal/host"
)

// For returns the prober for a host: live probes on the live host when
// running as root, the recorded results of a snapshot tree otherwise. A
// prober that cannot be had answers every probe with the reason.
func For(h *host.Host) Prober {
	p, err := Open(h)
	if err != nil {
		return Disabled{Reason: err.Error()}
	}
	return p
}

// Open is For with the error kept: a snapshot's probes.json that does not
// parse is a bad input the caller may want to refuse (exit 2).
func Open(h *host.Host) (Prober, error) {
	if !h.Live() {
		f, err := h.Open(File)
		if errors.Is(err, fs.ErrNotExist) {
			return ParseRecorded(nil, File)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", File, err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("%s: is a directory, expected a JSON file", File)
		}
		return ParseRecorded(f, File)
	}
	if uid := os.Geteuid(); uid != 0 {
		return Disabled{Reason: fmt.Sprintf("live probes need root (running as uid %d)", uid)}, nil
	}
	return NewLive(h), nil
}
