package probe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/host"
)

func TestParseRecorded(t *testing.T) {
	in := `{
  "userns": {"ran": true, "ok": true, "detail": {"uid_map": "0 666 1"}},
  "overlay-idmap:/var/lib/containerd": {"ran": true, "ok": false, "step": "mount overlay", "errno": "EINVAL", "error": "invalid argument"}
}
`
	rec, err := ParseRecorded(strings.NewReader(in), File)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Probe(context.Background(), Spec{Kind: UserNS}); !got.Ran || !got.OK || got.Detail["uid_map"] != "0 666 1" {
		t.Errorf("userns = %+v", got)
	}
	got := rec.Probe(context.Background(), Spec{Kind: OverlayIdmap, Path: "/var/lib/containerd"})
	if !got.Ran || got.OK || got.Errno != "EINVAL" || got.Step != "mount overlay" {
		t.Errorf("overlay = %+v", got)
	}
	miss := rec.Probe(context.Background(), Spec{Kind: TmpfsIdmap})
	if miss.Ran || miss.Reason != NotRecorded {
		t.Errorf("missing key = %+v, want not ran with %q", miss, NotRecorded)
	}
	if k := rec.Keys(); len(k) != 2 || k[0] != "overlay-idmap:/var/lib/containerd" {
		t.Errorf("keys = %v", k)
	}
}

func TestParseRecordedBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"syntax", "{\n  \"userns\": {\"ran\": true,}\n}", File + ":2:"},
		{"type", "{\n\"userns\": {\"ran\": \"yes\"}}", File + ":2:"},
		{"unknown field", "{\"userns\": {\"ran\": true, \"okay\": true}}", `unknown field "okay"`},
		{"not an object", "[1, 2]", File + ":1:"},
		{"empty", "", "empty file"},
		{"truncated", "{\"userns\": {\"ran\": tr", File + ":1:"},
		{"two objects", "{}\n{}", File + ":2:1: unexpected data"},
		{"binary junk", "\x7fELF\x02\x01\x01\x00\xff\xfe", File + ":1:1:"},
		{"invalid utf-8 key", "{\"\xff\xfe\": 3}", File + ":1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecorded(strings.NewReader(tc.in), File)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// A huge single line is refused without being held whole.
	big := bytes.Repeat([]byte("x"), maxRecorded+10)
	if _, err := ParseRecorded(bytes.NewReader(big), File); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("10 MB input: err = %v", err)
	}
}

// snapshot builds a snapshot tree with an optional probes.json (a
// directory when dir is true).
func snapshot(t *testing.T, probes string, dir bool) *host.Host {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, filepath.FromSlash(File))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	switch {
	case dir:
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	case probes != "":
		if err := os.WriteFile(p, []byte(probes), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := host.At(root)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestOpenSnapshot(t *testing.T) {
	ctx := context.Background()

	p, err := Open(snapshot(t, "", false))
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Probe(ctx, Spec{Kind: UserNS}); r.Ran || r.Reason != NotRecorded {
		t.Errorf("no probes.json: %+v", r)
	}

	p, err = Open(snapshot(t, `{"self-userns": {"ran": true, "ok": true}}`, false))
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Probe(ctx, Spec{Kind: SelfUserNS}); !r.Ran || !r.OK {
		t.Errorf("recorded self-userns: %+v", r)
	}

	if _, err := Open(snapshot(t, "", true)); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("probes.json a directory: err = %v", err)
	}

	// For turns a bad file into a prober that says why on every probe.
	bad := For(snapshot(t, "{\"userns\": ", false))
	if r := bad.Probe(ctx, Spec{Kind: UserNS}); r.Ran || !strings.Contains(r.Reason, File+":1:") {
		t.Errorf("bad probes.json through For: %+v", r)
	}
}

type countingProber struct {
	n   int
	res Result
}

func (c *countingProber) Probe(ctx context.Context, s Spec) Result {
	c.n++
	if ctx.Err() != nil {
		return interrupted(ctx.Err())
	}
	return c.res
}

func TestRecording(t *testing.T) {
	inner := &countingProber{res: Result{Ran: true, OK: true, Detail: map[string]string{"fstype": "ext4"}}}
	rec := NewRecording(inner)
	ctx := context.Background()
	s := Spec{Kind: Idmap, Path: "/var/lib/kubelet/pods"}
	if r := rec.Probe(ctx, s); !r.OK {
		t.Fatalf("probe = %+v", r)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if r := rec.Probe(cancelled, Spec{Kind: TmpfsIdmap}); r.Ran {
		t.Fatalf("cancelled probe ran: %+v", r)
	}
	got := rec.Results()
	if len(got) != 1 || got[s.Key()].Detail["fstype"] != "ext4" {
		t.Fatalf("results = %+v: want only %s (an interrupted probe says nothing about the host)", got, s.Key())
	}
	// The map is a copy.
	delete(got, s.Key())
	if len(rec.Results()) != 1 {
		t.Fatal("Results returned the recorder's own map")
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDisabledForNonRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("needs a non-root user to see the disabled prober")
	}
	r := For(host.Live()).Probe(context.Background(), Spec{Kind: UserNS})
	if r.Ran || !strings.Contains(r.Reason, "need root") {
		t.Fatalf("non-root live prober: %+v", r)
	}
}
