package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/usernsctl/usernsctl/internal/host"
	"github.com/usernsctl/usernsctl/internal/run"
)

// Restarter restarts daemons and waits until they answer: with systemctl
// when systemd is PID 1, else with Command (run by sh -c, with
// USERNSCTL_DAEMONS naming the daemons, e.g. "containerd kubelet").
type Restarter struct {
	Host    *host.Host
	Runner  run.Runner
	Command string
	Timeout time.Duration
}

// ErrNoRestart: no systemd and no --restart-command.
var ErrNoRestart = errors.New("--restart: systemd is not PID 1 here, so give --restart-command CMD (it runs with USERNSCTL_DAEMONS set to the daemons to restart)")

// Usable reports whether Restart can work at all, before anything is
// written.
func (r *Restarter) Usable() error {
	if r.Command == "" && !r.systemd() {
		return ErrNoRestart
	}
	return nil
}

func (r *Restarter) systemd() bool {
	b, err := r.Host.ReadFile("/proc/1/comm")
	return err == nil && strings.TrimSpace(string(b)) == "systemd"
}

// kubeletHealthz is the kubelet's local health endpoint (healthzPort).
const kubeletHealthz = "127.0.0.1:10248"

// kubeletHealthy asks the kubelet's healthz with a plain HTTP/1.0 GET on
// loopback. net/http would do, but it brings TLS and x509 into a binary
// whose start-up time on a node is part of every check.
func kubeletHealthy(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", kubeletHealthz)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n"); err != nil {
		return err
	}
	resp, err := io.ReadAll(io.LimitReader(conn, 4096))
	if err != nil {
		return err
	}
	status, _, _ := strings.Cut(string(resp), "\r\n")
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		_, body, _ := strings.Cut(string(resp), "\r\n\r\n")
		return fmt.Errorf("kubelet healthz: %q %q", status, strings.TrimSpace(body))
	}
	return nil
}

// restartOrder: containerd before the kubelet that talks to it.
var restartOrder = []string{"containerd", "docker", "kubelet"}

// Restart restarts daemons and waits for each to answer.
func (r *Restarter) Restart(ctx context.Context, daemons []string) error {
	if err := r.Usable(); err != nil {
		return err
	}
	ordered := slices.Clone(daemons)
	slices.SortFunc(ordered, func(a, b string) int { return slices.Index(restartOrder, a) - slices.Index(restartOrder, b) })
	timeout := r.Timeout
	if timeout == 0 {
		timeout = DefaultRestartTimeout
	}
	if r.Command != "" {
		x := &run.Exec{Timeout: timeout, Env: append(os.Environ(), "USERNSCTL_DAEMONS="+strings.Join(ordered, " "))}
		if _, err := x.Run(ctx, "sh", "-c", r.Command); err != nil {
			return fmt.Errorf("--restart-command: %w", err)
		}
	} else {
		for _, d := range ordered {
			if _, err := r.Runner.Run(ctx, "systemctl", "restart", d+".service"); err != nil {
				return err
			}
		}
	}
	for _, d := range ordered {
		if err := r.wait(ctx, d, timeout); err != nil {
			return err
		}
	}
	return nil
}

// wait polls the daemon until it answers or the timeout passes.
func (r *Restarter) wait(ctx context.Context, daemon string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = r.answers(ctx, daemon); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %s after the restart: %v", daemon, timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// answers asks the daemon the cheapest question that needs it running.
// The clients honour DOCKER_HOST and CONTAINERD_ADDRESS from the
// environment.
func (r *Restarter) answers(ctx context.Context, daemon string) error {
	switch daemon {
	case "docker":
		_, err := r.Runner.Run(ctx, "docker", "version", "--format", "{{.Server.Version}}")
		return err
	case "containerd":
		_, err := r.Runner.Run(ctx, "ctr", "version")
		return err
	case "kubelet":
		return kubeletHealthy(ctx)
	}
	return fmt.Errorf("unknown daemon %q", daemon)
}
