package probe

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/usernsctl/usernsctl/internal/host"
)

// Each iteration is a real probe: a new prober for the user namespace, a
// path no earlier iteration asked about for the others (results are
// memoized by key).

func BenchmarkProbeUserNS(b *testing.B) {
	needRoot(b)
	for i := 0; i < b.N; i++ {
		l := NewLive(host.Live())
		if r := l.Probe(context.Background(), Spec{Kind: UserNS}); !r.OK {
			b.Fatalf("%+v", r)
		}
		l.Close()
	}
}

func benchMount(b *testing.B, kind string) {
	needRoot(b)
	l := newLive(b)
	if r := l.Probe(context.Background(), Spec{Kind: UserNS}); !r.OK {
		b.Fatalf("%+v", r)
	}
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := Spec{Kind: kind, Path: filepath.Join(dir, fmt.Sprint(i))}
		if r := l.Probe(context.Background(), s); !r.OK {
			b.Fatalf("%+v", r)
		}
	}
}

func BenchmarkProbeIdmap(b *testing.B)        { benchMount(b, Idmap) }
func BenchmarkProbeOverlayIdmap(b *testing.B) { benchMount(b, OverlayIdmap) }

// BenchmarkProbeAll is what `usernsctl check --target kubernetes` asks of
// the prober, concurrently as the runner does: the user namespace, the
// overlay and tmpfs probes, the kubelet pods directory and the nesting
// test, on a fresh prober.
func BenchmarkProbeAll(b *testing.B) {
	needRoot(b)
	dir := b.TempDir()
	specs := []Spec{
		{Kind: UserNS}, {Kind: SelfUserNS}, {Kind: TmpfsIdmap},
		{Kind: OverlayIdmap, Path: filepath.Join(dir, "containerd")},
		{Kind: Idmap, Path: filepath.Join(dir, "kubelet", "pods")},
	}
	for i := 0; i < b.N; i++ {
		l := NewLive(host.Live())
		var wg sync.WaitGroup
		for _, s := range specs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := l.Probe(context.Background(), s); !r.Ran || (s.Kind != SelfUserNS && !r.OK) {
					b.Errorf("%s: %+v", s.Key(), r)
				}
			}()
		}
		wg.Wait()
		l.Close()
	}
}
