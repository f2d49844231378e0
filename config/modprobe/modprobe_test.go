package modprobe

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	in := `# Written by hand
blacklist floppy
options overlay metacopy=on redirect_dir=on
options  overlay \
    metacopy=N
install overlay /bin/true
options nf-conntrack hashsize=1024
options overlay
`
	got, err := ParseOptions(strings.NewReader(in), "/etc/modprobe.d/overlay.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := []Option{
		{"overlay", "metacopy", "on", "/etc/modprobe.d/overlay.conf", 3},
		{"overlay", "redirect_dir", "on", "/etc/modprobe.d/overlay.conf", 3},
		{"overlay", "metacopy", "N", "/etc/modprobe.d/overlay.conf", 4},
		{"nf_conntrack", "hashsize", "1024", "/etc/modprobe.d/overlay.conf", 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestParseOptionsBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"binary":       "\x7fELF\x00\x01",
		"invalid utf8": "options overlay metacopy=\xff\n",
		"long line":    "options overlay metacopy=" + strings.Repeat("y", 1<<20) + "\n",
	} {
		if _, err := ParseOptions(strings.NewReader(in), "/etc/modprobe.d/x.conf"); err == nil || !strings.Contains(err.Error(), "/etc/modprobe.d/x.conf:1") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestBool(t *testing.T) {
	for v, want := range map[string]bool{"Y": true, "y": true, "1": true, "on": true, "ON": true, "N": false, "0": false, "off": false, "Off": false} {
		if got, ok := Bool(v); !ok || got != want {
			t.Errorf("Bool(%q) = %v, %v", v, got, ok)
		}
	}
	for _, v := range []string{"", "maybe", "o", "2"} {
		if _, ok := Bool(v); ok {
			t.Errorf("Bool(%q) accepted", v)
		}
	}
}
