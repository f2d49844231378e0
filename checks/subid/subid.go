// Package subid holds the subid area's checks: /etc/subuid and /etc/subgid
// well-formed, free of overlaps and of real accounts' ids, the Docker remap
// user's ranges, the kubelet's range rules, and where libsubid reads from.
package subid

import (
	"fmt"
	"strings"

	"github.com/usernsctl/usernsctl/checks"
	"github.com/usernsctl/usernsctl/checks/facts"
	"github.com/usernsctl/usernsctl/config/subid"
	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/ids"
	"github.com/usernsctl/usernsctl/remap"
	"github.com/usernsctl/usernsctl/rules"
)

// Checkers returns the subid area's checks.
func Checkers() []checks.Checker {
	return []checks.Checker{
		checks.New(checks.Info{
			ID: "subid.files", Title: "subordinate id files",
			Doc: "/etc/subuid and /etc/subgid exist where the target needs them, every line is owner:start:count in plain decimal, and each file ends with a newline (shadow ≥4.19 refuses one that does not).",
		}, checkFiles),
		checks.New(checks.Info{
			ID: "subid.overlap", Title: "overlapping subordinate ranges",
			Doc: "No two lines of /etc/subuid (or of /etc/subgid) share an id: not across owners, not for one owner twice, not for one account named once by name and once by uid.",
		}, checkOverlap),
		checks.New(checks.Info{
			ID: "subid.account_uids", Title: "ranges that contain account ids",
			Doc: "No /etc/subuid range contains the uid of an account in /etc/passwd, and no /etc/subgid range the gid of a group in /etc/group.",
		}, checkAccountIDs),
		checks.New(checks.Info{
			ID: "subid.remap_user", Title: "Docker remap user's ranges",
			Doc:     "The userns-remap user has ranges in BOTH /etc/subuid and /etc/subgid, looked up by user name or uid (never the group; dockerd 28 and later take both in file order, earlier releases the uid's lines first), of at least 65536 ids, in one range (dockerd joins every range it finds, with no limit of its own); for \"default\" without dockremap, dockerd must find adduser or useradd, and usermod.",
			Targets: []checks.Target{checks.Docker},
		}, checkRemapUser),
		checks.New(checks.Info{
			ID: "subid.kubelet", Title: "kubelet's id range",
			Doc:     "With UserNamespacesSupport on (" + rules.KubeletUserNSDefaultOn.Value + "+ by default), user.Lookup(\"kubelet\") answers as the kubelet's does (/etc/passwd, or NSS for a cgo kubelet) and, when the user exists, getsubids is on the kubelet's PATH and prints for uids and gids the same one line, a range aligned to the per-pod block (idsPerPod from " + rules.KubeletIDsPerPodHonoured.Value + ", else 65536), at least maxPods blocks, ending at or below 2^32 − the block (the kernel never maps a block ending at 2^32); without the user the kubelet silently uses its default range (idsPerPod..2^32), which from " + rules.KubeletIDsPerPodHonoured.Value + " must hold maxPods blocks of a power-of-two idsPerPod. With the gate off the kubelet reads none of it: problems are warnings.",
			Targets: []checks.Target{checks.Kubernetes},
		}, checkKubelet),
		checks.New(checks.Info{
			ID: "subid.nsswitch", Title: "subordinate id source",
			Doc: "The `subid:` line of /etc/nsswitch.conf: a source other than files (SSSD, LDAP) means getsubids, newuidmap and the kubelet do not read /etc/subuid and /etc/subgid, while dockerd still does.",
		}, checkNSSwitch),
	}
}

// where names a line: "/etc/subuid:3".
func where(f *subid.File, no int) string { return errs.At(f.Name, no).String() }

// cite names a valid line with its text: "/etc/subuid:3 (alice:100000:65536)".
func cite(f *subid.File, l *subid.Line) string {
	return fmt.Sprintf("%s (%s)", where(f, l.No), l.Raw)
}

// list joins the first n items with "; " and says how many more there are.
func list(items []string, n int) string { return listSep(items, n, "; ") }

func listSep(items []string, n int, sep string) string {
	if len(items) <= n {
		return strings.Join(items, sep)
	}
	return fmt.Sprintf("%s%sand %d more", strings.Join(items[:n], sep), sep, len(items)-n)
}

// linesFor returns the valid lines of f whose owner is one of keys, in
// file order.
func linesFor(f *subid.File, keys []string) []*subid.Line {
	if f == nil {
		return nil
	}
	var out []*subid.Line
	for _, l := range f.Ranges() {
		for _, k := range keys {
			if l.Range.Owner == k {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// suggester hands out free ranges for remedies, each one avoiding every
// line of both files, every account id and the ranges already suggested.
type suggester struct {
	env  *checks.Env
	used []ids.Range
	req  remap.Request
}

func newSuggester(env *checks.Env) *suggester {
	return &suggester{env: env}
}

// load builds the occupied list on first use.
func (s *suggester) load() {
	if s.used != nil {
		return
	}
	f := facts.SubIDsOf(s.env)
	var ids [][]int
	if acc := facts.AccountsOf(s.env); acc.Err == nil {
		ids = [][]int{acc.UIDs(), acc.GIDs()}
	}
	d := facts.LoginDefsOf(s.env).Defs
	s.used = remap.Occupied(f.Files(), ids...)
	s.req = remap.Request{Min: d.SubUIDMin.Value, Max: d.SubUIDMax.Value}
}

// next returns a free range of count ids, or false. The occupied list is
// built on first use: most runs suggest nothing, and on a 100,000-line
// file it costs megabytes.
func (s *suggester) next(count uint64) (ids.Range, bool) {
	s.load()
	req := s.req
	req.Count = count
	start, err := remap.Allocate(s.used, req)
	if err != nil {
		return ids.Range{}, false
	}
	r := ids.Range{Start: start, Count: count}
	s.used = append(s.used, r)
	return r, true
}

// replaceLine is the sed command that replaces line no of path with text,
// or "" when text cannot be written safely in a sed replacement.
func replaceLine(path string, no int, text string) string {
	if strings.ContainsAny(text, `/&\'`+"\n") {
		return ""
	}
	return fmt.Sprintf("sed -i '%ds/.*/%s/' %s", no, text, path)
}
