// Command usernsctl gets a Linux host ready for user-namespaced containers
// and proves that it worked.
package main

import (
	"os"
	"runtime/debug"

	"github.com/usernsctl/usernsctl/cmd"
)

func main() {
	tuneGC()
	os.Exit(cmd.Main(os.Args[1:], os.Stdout, os.Stderr))
}

// tuneGC trades transient memory for time: usernsctl lives for a fraction
// of a second, and on a host with 100,000 subordinate ID ranges the
// default collector spends a third of the run marking the parsed lines
// again and again. So the collector runs only against a 256 MiB soft
// limit (inputs are capped at 32 MiB each; a normal run stays under
// 10 MiB and never collects). GOGC and GOMEMLIMIT set by the operator win.
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(256 << 20)
	debug.SetGCPercent(-1)
}
