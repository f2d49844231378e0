package facts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/run"
)

// A dockerd whose build recorded its version is answered from the build
// info, without running it: this fake prints a different version when
// run, so a result of 99.1.2 proves it was not executed.
func TestVersionFromBuildInfo(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain to build the fake dockerd")
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module fake\ngo 1.21\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\nimport \"fmt\"\nfunc main() { fmt.Println(\"Docker version 1.0.0, build x\") }\n"), 0o644)
	bin := t.TempDir()
	build := exec.Command(gobin, "build", "-o", filepath.Join(bin, "dockerd"),
		"-ldflags", `-X "github.com/docker/docker/dockerversion.Version=99.1.2+dfsg1"`, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("PATH", bin)

	env := &checks.Env{Host: host.Live(), Run: run.NewMemo(&run.Exec{})}
	p := VersionOf(context.Background(), env, "dockerd")
	if !p.Known() || p.Version.Raw != "99.1.2+dfsg1" {
		t.Fatalf("got %+v, want 99.1.2+dfsg1 from the build info", p)
	}
	// Without the recorded version the command runs.
	build = exec.Command(gobin, "build", "-o", filepath.Join(bin, "dockerd"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env = &checks.Env{Host: host.Live(), Run: run.NewMemo(&run.Exec{})}
	if p := VersionOf(context.Background(), env, "dockerd"); p.Version.Raw != "1.0.0" {
		t.Fatalf("got %+v, want 1.0.0 from --version", p)
	}
}
