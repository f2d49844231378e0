package build

import (
	"runtime"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	in := Get()
	if in.Version == "" || in.Go != runtime.Version() {
		t.Fatalf("%+v", in)
	}
	version = "v9.9.9"
	defer func() { version = "" }()
	if got := Version(); got != "v9.9.9" {
		t.Errorf("stamped version %q", got)
	}
	if in.Commit != "" && strings.Contains(in.Version, "devel") && !strings.Contains(in.Version, in.Commit[:min(12, len(in.Commit))]) {
		t.Errorf("a devel build names its commit: %+v", in)
	}
}
