package probe

import (
	"io"
	"os"
	"time"
)

// ChildCommand is the hidden sub-command the user-namespace probe runs its
// own binary (/proc/self/exe) as. The child only holds its new user
// namespace open until the prober closes its stdin.
const ChildCommand = "probe-child"

// childEnv marks a process started by the prober as its child.
const childEnv = "USERNSCTL_PROBE_CHILD"

// childLimit bounds a child whose parent vanished without closing the pipe
// (the write end is close-on-exec, so only a kernel bug could keep it open).
const childLimit = time.Minute

// init turns a process started by the prober into the child before main
// (or a test binary's TestMain) runs. The cobra sub-command in
// cmd/probechild.go is the same child for the production binary; catching
// it here as well matters for test binaries, which have no cobra tree and
// would otherwise run their whole test suite as the "child" of every probe.
func init() {
	if len(os.Args) == 2 && os.Args[1] == ChildCommand && os.Getenv(childEnv) == "1" {
		os.Exit(RunChild(os.Stdin))
	}
}

// RunChild is the child's whole life: wait until the parent closes stdin
// (or dies, which closes it too), then exit 0.
func RunChild(stdin io.Reader) int {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(childLimit):
	}
	return 0
}
