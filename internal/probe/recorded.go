package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/usernsctl/usernsctl/internal/errs"
	"github.com/usernsctl/usernsctl/internal/jsonpos"
)

// File is where a snapshot tree keeps probe results: an object mapping
// Spec.Key() to Result.
const File = "/.usernsctl/probes.json"

// NotRecorded is the reason given for a probe a snapshot has no result for.
const NotRecorded = "not recorded in the snapshot"

// maxRecorded bounds probes.json; real ones are a few kilobytes.
const maxRecorded = 4 << 20

// Recorded replays the probe results of a snapshot tree. It never probes.
type Recorded struct {
	results map[string]Result
}

// ParseRecorded reads probes.json from r; name is used in messages. A nil
// reader (no file) gives a snapshot with nothing recorded. Bad input is
// reported with line and column.
func ParseRecorded(r io.Reader, name string) (*Recorded, error) {
	rec := &Recorded{results: map[string]Result{}}
	if r == nil {
		return rec, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, maxRecorded+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxRecorded {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a probes.json written by usernsctl", name, maxRecorded)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec.results); err != nil {
		return nil, jsonErr(name, data, dec.InputOffset(), err)
	}
	if off := jsonpos.Trailing(data, dec.InputOffset()); off >= 0 {
		line, col := jsonpos.LineCol(data, off)
		return nil, errs.Inputf(errs.Pos{File: name, Line: line, Column: col}, "unexpected data after the top-level object (want exactly one object mapping probe keys to results)")
	}
	return rec, nil
}

// jsonErr names the line and column of a decoding error.
func jsonErr(name string, data []byte, fallback int64, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty file: want an object mapping probe keys to results", name)
	}
	line, col := jsonpos.LineCol(data, jsonpos.Offset(data, err, fallback))
	return errs.Inputf(errs.Pos{File: name, Line: line, Column: col}, "%v (want an object mapping probe keys such as \"userns\" to results)", err)
}

// Probe implements Prober.
func (r *Recorded) Probe(_ context.Context, s Spec) Result {
	res, ok := r.results[s.Key()]
	if !ok {
		return Result{Reason: NotRecorded}
	}
	return res
}

// Keys lists the recorded probe keys, sorted.
func (r *Recorded) Keys() []string {
	out := make([]string, 0, len(r.results))
	for k := range r.results {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Recording runs probes through Inner and keeps every result by key, for
// `usernsctl snapshot`.
type Recording struct {
	Inner Prober

	mu      sync.Mutex
	results map[string]Result
}

// NewRecording wraps p.
func NewRecording(p Prober) *Recording { return &Recording{Inner: p} }

// Probe implements Prober.
func (r *Recording) Probe(ctx context.Context, s Spec) Result {
	res := r.Inner.Probe(ctx, s)
	if !res.Ran && ctx.Err() != nil {
		return res // an interrupted probe says nothing about the host
	}
	r.mu.Lock()
	if r.results == nil {
		r.results = map[string]Result{}
	}
	r.results[s.Key()] = res
	r.mu.Unlock()
	return res
}

// Results returns a copy of every result seen, by Spec.Key(): the content
// of probes.json.
func (r *Recording) Results() map[string]Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Result, len(r.results))
	for k, v := range r.results {
		out[k] = v
	}
	return out
}

// Close closes Inner when it holds resources (a live prober does).
func (r *Recording) Close() error {
	if c, ok := r.Inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
