package verify

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ChildCommand is the hidden sub-command the Docker probe container runs:
// `usernsctl verify-child DIR NONCE`.
const ChildCommand = "verify-child"

// childLimit ends a probe whose verify vanished without removing it
// (SIGKILL): it exits and is left stopped, never running.
const childLimit = 5 * time.Minute

// RunChild is the probe's life inside its container: write a file into
// the bind mount DIR as container root (atomically: the host polls for
// it), then wait for SIGTERM, SIGINT or childLimit. The file holds the
// nonce, so the host knows the file is this probe's, and the ids and maps
// seen from inside, for the record.
func RunChild(args []string, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintf(stderr, "usage: usernsctl %s DIR NONCE\n", ChildCommand)
		return 2
	}
	dir, nonce := args[0], args[1]
	// Signals first: the host may remove the probe as soon as the file
	// shows.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	var b strings.Builder
	fmt.Fprintf(&b, "nonce %s\nuid %d\ngid %d\n", nonce, os.Getuid(), os.Getgid())
	for _, f := range []string{"uid_map", "gid_map"} {
		m, _ := os.ReadFile("/proc/self/" + f)
		fmt.Fprintf(&b, "%s %s\n", f, strings.Join(strings.Fields(string(m)), " "))
	}
	tmp := filepath.Join(dir, "."+probeFileName+".tmp")
	err := os.WriteFile(tmp, []byte(b.String()), 0o644)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, probeFileName))
	}
	if err != nil {
		fmt.Fprintf(stderr, "usernsctl %s: as uid %d: %v\n", ChildCommand, os.Getuid(), err)
		return 1
	}
	select {
	case <-sigs:
	case <-time.After(childLimit):
	}
	return 0
}
