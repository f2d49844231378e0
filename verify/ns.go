package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/verify/procfs"
)

// NSSchema names the JSON contract of `ns --output json`.
const NSSchema = "usernsctl.ns/v1"

// NSReport is `usernsctl ns`: the namespaces of each process side by side
// with the host's (PID 1).
type NSReport struct {
	Schema    string   `json:"schema"`
	Host      NSProc   `json:"host"`
	Processes []NSProc `json:"processes"`
	// HostNote says why the reference is not PID 1: its namespaces could
	// not be read (a sandbox that hides PID 1), so usernsctl's own are
	// shown instead.
	HostNote string `json:"host_note,omitempty"`
	// Nested is set when usernsctl itself runs in a user namespace: every
	// map is then relative to it.
	Nested string `json:"nested,omitempty"`
}

// NSProc is one process's namespaces and user namespace maps.
type NSProc struct {
	// Arg is what the operator named ("4321", "3f2a9c…"); Via how it was
	// resolved.
	Arg        string         `json:"arg,omitempty"`
	Via        string         `json:"via,omitempty"`
	PID        int            `json:"pid"`
	Comm       string         `json:"comm,omitempty"`
	Container  string         `json:"container,omitempty"`
	Namespaces []NSEntry      `json:"namespaces"`
	UIDMap     []procfs.IDMap `json:"uid_map"`
	GIDMap     []procfs.IDMap `json:"gid_map"`
	Error      string         `json:"error,omitempty"`
}

// NSEntry is one namespace of one process.
type NSEntry struct {
	Type  string `json:"type"`
	Inode uint64 `json:"inode,omitempty"`
	// Shared is true when the host (PID 1) is in the same namespace; nil
	// when either side could not be read.
	Shared *bool `json:"shared_with_host"`
	// With lists the other processes given that share it (containers of
	// one pod share net, ipc and uts).
	With  []int  `json:"shared_with,omitempty"`
	Error string `json:"error,omitempty"`
}

// Failed reports whether any process could not be read.
func (r *NSReport) Failed() bool {
	for _, p := range r.Processes {
		if p.Error != "" {
			return true
		}
	}
	return r.Host.Error != ""
}

// NS builds the report for args (pids or container IDs) and pods
// (NAMESPACE/NAME, resolved through the CRI: the sandbox, then each
// running container).
func NS(ctx context.Context, env *checks.Env, args, pods []string, namespaces []string) *NSReport {
	rep := &NSReport{Schema: NSSchema, Host: nsProc(env, 1), Processes: []NSProc{}}
	rep.Host.Arg = "host"
	if e := rep.Host.ns("user"); e == nil || e.Error != "" {
		if self, err := selfPID(env); err == nil && self != 1 {
			why := rep.Host.Error
			if e != nil {
				why = e.Error
			}
			rep.Host = nsProc(env, self)
			rep.Host.Arg = "self"
			rep.HostNote = fmt.Sprintf("PID 1's namespaces cannot be read (%s): compared with usernsctl's own (pid %d) instead", why, self)
		}
	}
	for _, a := range args {
		pid, via, err := Resolve(ctx, env, a, namespaces)
		if err != nil {
			rep.Processes = append(rep.Processes, NSProc{Arg: a, Error: err.Error(), Namespaces: []NSEntry{}})
			continue
		}
		p := nsProc(env, pid)
		p.Arg, p.Via = a, via
		if via != "pid" {
			p.Container = a
		}
		rep.Processes = append(rep.Processes, p)
	}
	for _, ref := range pods {
		pod := ResolvePod(ctx, env, ref)
		if pod.Sandbox == nil {
			rep.Processes = append(rep.Processes, NSProc{Arg: "pod " + ref, Error: pod.Err.Error(), Namespaces: []NSEntry{}})
			continue
		}
		for _, s := range append([]*Subject{pod.Sandbox}, pod.Containers...) {
			arg := "pod " + pod.Ref()
			if s == pod.Sandbox {
				arg += " sandbox"
			}
			if s.Err != nil {
				rep.Processes = append(rep.Processes, NSProc{Arg: arg, Container: s.Container, Error: s.Err.Error(), Namespaces: []NSEntry{}})
				continue
			}
			p := nsProc(env, s.PID)
			p.Arg, p.Via, p.Container = arg, s.Via, s.Container
			rep.Processes = append(rep.Processes, p)
		}
		if pod.Err != nil {
			rep.Processes = append(rep.Processes, NSProc{Arg: "pod " + ref, Error: pod.Err.Error(), Namespaces: []NSEntry{}})
		}
	}
	for i := range rep.Processes {
		p := &rep.Processes[i]
		for k := range p.Namespaces {
			e := &p.Namespaces[k]
			if e.Error != "" {
				continue
			}
			if h := rep.Host.ns(e.Type); h != nil && h.Error == "" {
				shared := h.Inode == e.Inode
				e.Shared = &shared
			}
			for j, o := range rep.Processes {
				if j == i || o.PID == p.PID {
					continue
				}
				if x := o.ns(e.Type); x != nil && x.Error == "" && x.Inode == e.Inode {
					e.With = append(e.With, o.PID)
				}
			}
		}
	}
	rep.Nested = selfNested(env)
	return rep
}

func (p *NSProc) ns(kind string) *NSEntry {
	for i := range p.Namespaces {
		if p.Namespaces[i].Type == kind {
			return &p.Namespaces[i]
		}
	}
	return nil
}

func nsProc(env *checks.Env, pid int) NSProc {
	p := NSProc{PID: pid, Namespaces: []NSEntry{}, UIDMap: []procfs.IDMap{}, GIDMap: []procfs.IDMap{}}
	proc, err := procfs.Observe(env.Host, pid)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	p.Comm = proc.Stat.Comm
	if proc.ContainerID != "" {
		p.Container = proc.ContainerID
	}
	for _, k := range procfs.Kinds {
		e := NSEntry{Type: k}
		if ino, ok := proc.NS[k]; ok {
			e.Inode = ino
		} else {
			e.Error = proc.NSErr[k].Error()
		}
		p.Namespaces = append(p.Namespaces, e)
	}
	var errs []string
	if err := proc.NSErr["user"]; err != nil {
		errs = append(errs, err.Error())
	}
	if proc.UIDErr != nil {
		errs = append(errs, proc.UIDErr.Error())
	} else {
		p.UIDMap = proc.UIDMap
	}
	if proc.GIDErr != nil {
		errs = append(errs, proc.GIDErr.Error())
	} else {
		p.GIDMap = proc.GIDMap
	}
	if len(errs) > 0 {
		p.Error = strings.Join(errs, "; ")
	}
	return p
}

// WriteJSON prints the report as one JSON object.
func (r *NSReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText prints the namespaces as a table, one column per process,
// then the user namespace maps and which processes share what.
func (r *NSReport) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	head := []string{"NAMESPACE", "HOST (PID 1)"}
	if r.Host.Arg == "self" {
		head[1] = "USERNSCTL (PID " + strconv.Itoa(r.Host.PID) + ")"
	}
	for _, p := range r.Processes {
		head = append(head, p.title())
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, k := range procfs.Kinds {
		row := []string{k, r.Host.cell(k, false)}
		for _, p := range r.Processes {
			row = append(row, p.cell(k, true))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()

	b.WriteString("\nuser namespace maps (inside outside count")
	if r.Nested != "" {
		b.WriteString("; outside ids relative to usernsctl's own user namespace")
	}
	b.WriteString("):\n")
	tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, p := range append([]NSProc{r.Host}, r.Processes...) {
		name := p.title()
		switch p.Arg {
		case "host":
			name = "host (PID 1)"
		case "self":
			name = "usernsctl (pid " + strconv.Itoa(p.PID) + ")"
		}
		if p.Error != "" && len(p.UIDMap) == 0 && len(p.GIDMap) == 0 {
			fmt.Fprintf(tw, "  %s\terror: %s\n", name, p.Error)
			continue
		}
		fmt.Fprintf(tw, "  %s\tuid_map %s\tgid_map %s\n", name, orDash(procfs.FormatMap(p.UIDMap)), orDash(procfs.FormatMap(p.GIDMap)))
	}
	tw.Flush()
	if r.HostNote != "" {
		b.WriteString("\nnote: " + r.HostNote + "\n")
	}
	if notes := r.sharing(); len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	if r.Nested != "" {
		b.WriteString("\nnote: " + r.Nested + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *NSProc) title() string {
	if p.Error != "" && p.PID == 0 {
		return p.Arg
	}
	t := "PID " + strconv.Itoa(p.PID)
	if p.Comm != "" {
		t += " " + p.Comm
	}
	if p.Container != "" {
		t += " [" + short(p.Container) + "]"
	}
	if strings.HasPrefix(p.Arg, "pod ") {
		t += " " + p.Arg
	}
	return t
}

func (p *NSProc) cell(kind string, mark bool) string {
	if p.Error != "" && p.PID == 0 {
		return "-"
	}
	e := p.ns(kind)
	if e == nil || e.Error != "" {
		return "unreadable"
	}
	s := strconv.FormatUint(e.Inode, 10)
	if mark && e.Shared != nil {
		if *e.Shared {
			s += " shared"
		} else {
			s += " isolated"
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sharing describes namespaces shared between the given processes
// ("pids 4321 and 4400 share ipc, net, uts"), the sign of one pod.
func (r *NSReport) sharing() []string {
	groups := map[string][]string{}
	var keys []string
	for i, p := range r.Processes {
		for _, e := range p.Namespaces {
			if e.Error != "" || len(e.With) == 0 || e.Shared == nil || *e.Shared {
				continue
			}
			pids := append([]int{p.PID}, e.With...)
			sort.Ints(pids)
			if pids[0] != p.PID || i > 0 && r.Processes[i-1].PID == p.PID {
				continue // said once, by the lowest pid
			}
			k := idsList(pids)
			if _, ok := groups[k]; !ok {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], e.Type)
		}
	}
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("pids %s share %s", k, strings.Join(groups[k], ", ")))
	}
	return out
}

// selfPID is usernsctl's own pid as the host seam sees it (/proc/self).
func selfPID(env *checks.Env) (int, error) {
	link, err := env.Host.Readlink("/proc/self")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(link)
}
