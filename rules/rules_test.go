package rules

import (
	"strconv"
	"testing"
)

func TestTableIsComplete(t *testing.T) {
	if len(All()) == 0 {
		t.Fatal("no thresholds")
	}
	for _, th := range All() {
		if th.Name == "" || th.Value == "" || th.Means == "" || th.Source == "" {
			t.Errorf("%+v: every threshold says what it means and which code enforces it", th)
		}
	}
}

// The numbers code computes with are the table's numbers.
func TestNumbersMatchTheTable(t *testing.T) {
	for _, tc := range []struct {
		t Threshold
		n uint64
	}{
		{DockerMinIDs, DockerMinIDCount},
		{KubeletUnit, KubeletUnitIDs},
		{KubeletIDsPerPodMax, KubeletIDsPerPodMaxN},
		{KernelMapEnd, KernelMapEndID},
		{KernelMapMaxExtents, KernelMapMaxLines},
	} {
		if got := strconv.FormatUint(tc.n, 10); got != tc.t.Value {
			t.Errorf("%s is %s in the table, %s in code", tc.t.Name, tc.t.Value, got)
		}
	}
}
