package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/internal/run"
)

// resolveDocker finds a Docker container's pid with `docker inspect`.
func resolveDocker(ctx context.Context, env *checks.Env, id string) *Subject {
	s := &Subject{Container: id, Via: "docker inspect"}
	out, err := env.Run.Run(ctx, "docker", "inspect", "--type", "container", id)
	if err != nil {
		s.Err = cmdErr(err)
		return s
	}
	var got []struct {
		ID    string `json:"Id"`
		Name  string
		State struct {
			Pid     int
			Running bool
			Status  string
		}
		HostConfig struct{ UsernsMode string }
	}
	if err := json.Unmarshal(out.Stdout, &got); err != nil || len(got) != 1 {
		s.Err = fmt.Errorf("`docker inspect %s` printed no container: %v", id, err)
		return s
	}
	c := got[0]
	s.UsernsMode = c.HostConfig.UsernsMode
	if !c.State.Running || c.State.Pid <= 0 {
		s.Err = fmt.Errorf("container %s is not running (status %s)", id, c.State.Status)
		return s
	}
	s.PID = c.State.Pid
	return s
}

// resolveCRI finds a containerd container's pid: `crictl inspect` when
// crictl is installed (CRI containers), else `ctr -n NS task ls` in the
// namespaces given, then k8s.io and default.
func resolveCRI(ctx context.Context, env *checks.Env, id string, namespaces []string) *Subject {
	var errs []string
	if env.Run.Installed("crictl") {
		pid, err := crictlPID(ctx, env, id)
		if err == nil {
			return &Subject{Container: id, PID: pid, Via: "crictl inspect"}
		}
		errs = append(errs, err.Error())
	}
	if !env.Run.Installed("ctr") && len(errs) == 0 {
		return &Subject{Container: id, Err: errors.New("neither crictl nor ctr is installed: give the container's --pid instead")}
	}
	seen := map[string]bool{}
	for _, ns := range append(append([]string(nil), namespaces...), "k8s.io", "default") {
		if ns == "" || seen[ns] {
			continue
		}
		seen[ns] = true
		argv := []string{"ctr", "-n", ns, "task", "ls"}
		out, err := env.Run.Run(ctx, argv...)
		if err != nil {
			errs = append(errs, cmdErr(err).Error())
			if run.IsNotFound(err) {
				break
			}
			continue
		}
		pid, status, ok := ctrTask(out.Stdout, id)
		if !ok {
			continue
		}
		if pid <= 0 || !strings.EqualFold(status, "RUNNING") {
			return &Subject{Container: id, Via: run.Line(argv), Err: fmt.Errorf("task %s is %s in namespace %s", id, status, ns)}
		}
		return &Subject{Container: id, PID: pid, Via: run.Line(argv)}
	}
	msg := fmt.Sprintf("no running container %q", id)
	if len(errs) > 0 {
		msg += " (" + strings.Join(errs, "; ") + ")"
	}
	return &Subject{Container: id, Err: errors.New(msg)}
}

func crictlPID(ctx context.Context, env *checks.Env, id string) (int, error) {
	out, err := env.Run.Run(ctx, "crictl", "inspect", id)
	if err != nil {
		return 0, cmdErr(err)
	}
	var got struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out.Stdout, &got); err != nil {
		return 0, fmt.Errorf("`crictl inspect %s`: %v", id, err)
	}
	if got.Info.Pid <= 0 {
		return 0, fmt.Errorf("`crictl inspect %s`: no pid (state %s)", id, got.Status.State)
	}
	return got.Info.Pid, nil
}

// ctrTask finds id in `ctr task ls` output: "TASK  PID  STATUS" lines.
func ctrTask(out []byte, id string) (pid int, status string, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != id {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		return n, f[2], true
	}
	return 0, "", false
}

// cmdErr shortens a command's failure to what it said.
func cmdErr(err error) error {
	var rerr *run.Error
	if errors.As(err, &rerr) {
		if s := strings.TrimSpace(string(rerr.Output.Stderr)); s != "" {
			return fmt.Errorf("`%s`: %s", run.Line(rerr.Argv), firstLine(s))
		}
	}
	return err
}

// Resolve finds the pid of a process named as ns takes it: digits are a
// pid; anything else a container, asked of Docker (when installed), then
// crictl, then ctr. via says how it was found.
func Resolve(ctx context.Context, env *checks.Env, arg string, namespaces []string) (pid int, via string, err error) {
	if n, err := strconv.Atoi(arg); err == nil {
		if n <= 0 {
			return 0, "", fmt.Errorf("%q is not a pid", arg)
		}
		return n, "pid", nil
	}
	var errs []string
	if env.Run.Installed("docker") {
		s := resolveDocker(ctx, env, arg)
		if s.Err == nil {
			return s.PID, s.Via, nil
		}
		errs = append(errs, s.Err.Error())
	}
	s := resolveCRI(ctx, env, arg, namespaces)
	if s.Err == nil {
		return s.PID, s.Via, nil
	}
	errs = append(errs, s.Err.Error())
	return 0, "", fmt.Errorf("container %q: %s", arg, strings.Join(errs, "; "))
}
