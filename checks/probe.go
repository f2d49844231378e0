package checks

import (
	"github.com/usernsctl/usernsctl/internal/probe"
)

// ProbeNotRun is the skip for a probe that did not run, with its reason.
func ProbeNotRun(r probe.Result) Result {
	reason := r.Reason
	if reason == "" {
		reason = "no reason given"
	}
	return Skipf("the probe did not run: %s", reason).With("ran", false)
}

// ProbeEvidence attaches a probe's raw result.
func ProbeEvidence(res Result, key string, r probe.Result) Result {
	res = res.With("probe", key).With("ran", r.Ran).With("ok", r.OK)
	if r.Step != "" {
		res = res.With("step", r.Step)
	}
	if r.Errno != "" {
		res = res.With("errno", r.Errno)
	}
	if r.Error != "" {
		res = res.With("error", r.Error)
	}
	for k, v := range r.Detail {
		res = res.With(k, v)
	}
	return res
}
