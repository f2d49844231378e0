package rules

import "testing"

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
