package apply

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/usernsctl/usernsctl/internal/txn"
)

// stateFile records what applies did beyond files: the targets (which
// daemons revert restarts) and the live settings with the values they had
// before the first apply (which revert puts back). It is written through
// the transaction like any other file, so revert removes it with the rest.
const stateFile = txn.DefaultStateDir + "/applied.json"

const stateSchema = "usernsctl.state/v1"

type state struct {
	Schema  string   `json:"schema"`
	Targets []string `json:"targets"`
	// Restart lists the daemons whose config applies changed: revert
	// restarts these.
	Restart []string     `json:"restart,omitempty"`
	Live    []LiveChange `json:"live,omitempty"`
}

func parseState(b []byte) (*state, error) {
	st := &state{Schema: stateSchema}
	if b == nil {
		return st, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(st); err != nil || st.Schema != stateSchema {
		return nil, fmt.Errorf("%s: not a usernsctl state file (%v): move it aside and run again", stateFile, err)
	}
	return st, nil
}

// recordState adds this apply to the state file, when it changes anything.
func (p *plan) recordState(target string) error {
	if !p.changed() {
		return nil
	}
	b, err := p.get(stateFile)
	if err != nil {
		return inputErr(err)
	}
	st, err := parseState(b)
	if err != nil {
		return inputErr(err)
	}
	if !slices.Contains(st.Targets, target) {
		st.Targets = append(st.Targets, target)
	}
	for _, d := range p.daemons {
		if !slices.Contains(st.Restart, d) {
			st.Restart = append(st.Restart, d)
		}
	}
	for _, l := range p.live {
		i := slices.IndexFunc(st.Live, func(x LiveChange) bool { return x.Path == l.Path })
		if i < 0 {
			st.Live = append(st.Live, l)
			continue
		}
		st.Live[i].Value, st.Live[i].Why = l.Value, l.Why // keep the first Before
	}
	out, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	p.set(stateFile, append(out, '\n'), 0o644)
	return nil
}
