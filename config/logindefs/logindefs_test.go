package logindefs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// debian12 is the relevant part of Debian 12's /etc/login.defs, with its
// tab-and-space alignment.
const debian12 = `#
# /etc/login.defs - Configuration control definitions for the login package.
#
MAIL_DIR        /var/mail
ENV_PATH	PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games
UMASK		022
#
# Min/max values for automatic uid selection in useradd
#
UID_MIN			 1000
UID_MAX			60000
# System accounts
#SYS_UID_MIN		  100
#SYS_UID_MAX		  999
# Extra per user uids
SUB_UID_MIN		   100000
SUB_UID_MAX		600100000
SUB_UID_COUNT		    65536
GID_MIN			 1000
GID_MAX			60000
SUB_GID_MIN		   100000
SUB_GID_MAX		600100000
SUB_GID_COUNT		    65536
ENCRYPT_METHOD SHA512
`

func TestDebian(t *testing.T) {
	d, err := Parse(strings.NewReader(debian12), "/etc/login.defs")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  Setting
		want uint64
		line int
	}{
		{"SUB_UID_MIN", d.SubUIDMin, 100000, 16},
		{"SUB_UID_MAX", d.SubUIDMax, 600100000, 17},
		{"SUB_UID_COUNT", d.SubUIDCount, 65536, 18},
		{"SUB_GID_COUNT", d.SubGIDCount, 65536, 23},
		{"UID_MIN", d.UIDMin, 1000, 10},
		{"UID_MAX", d.UIDMax, 60000, 11},
		{"SYS_UID_MIN", d.SysUIDMin, 101, 0},
		{"SYS_UID_MAX", d.SysUIDMax, 999, 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {

			if c.got.Value != c.want || c.got.Line != c.line {
				t.Errorf("%s: got %d at line %d, want %d at line %d", c.name, c.got.Value, c.got.Line, c.want, c.line)
			}
		})
	}
	if d.Where(d.SubUIDMax) != "/etc/login.defs:17" || d.Where(d.SysUIDMin) != "default" {
		t.Errorf("Where: %q %q", d.Where(d.SubUIDMax), d.Where(d.SysUIDMin))
	}
}

func TestShadowReadingRules(t *testing.T) {
	in := "  SUB_UID_MIN  \"200000\"  \n" + // leading blanks, quotes, trailing blanks
		"SUB_UID_MAX 0x10000000\n" + // hex, as strtoul base 0
		"SUB_UID_COUNT 0200000\n" + // octal 65536
		"SUB_GID_COUNT 0\n" + // disables subordinate gids
		"UID_MIN 5000\n" + // moves SYS_UID_MAX's default
		"UID_MIN 2000\n" + // last one wins
		"SYS_GID_MAX\n" + // a name alone is skipped
		"FOO bar\n" // unknown keys are ignored
	d, err := Parse(strings.NewReader(in), "login.defs")
	if err != nil {
		t.Fatal(err)
	}
	if d.SubUIDMin.Value != 200000 || d.SubUIDMax.Value != 1<<28 || d.SubUIDCount.Value != 65536 {
		t.Errorf("got %+v %+v %+v", d.SubUIDMin, d.SubUIDMax, d.SubUIDCount)
	}
	if u, g := d.SubIDsDisabled(); u || !g {
		t.Errorf("SubIDsDisabled = %v %v", u, g)
	}
	if d.UIDMin.Value != 2000 || d.UIDMin.Line != 6 || d.SysUIDMax.Value != 1999 {
		t.Errorf("UID_MIN %+v SYS_UID_MAX %+v", d.UIDMin, d.SysUIDMax)
	}
	if d.SysGIDMax.Value != 999 {
		t.Errorf("SYS_GID_MAX %+v", d.SysGIDMax)
	}
}

func TestBadValues(t *testing.T) {
	in := "UID_MIN 1000\nSUB_UID_MIN 100k\nSUB_UID_MAX -5\nSUB_GID_MAX 99999999999\nSUB_GID_MIN \"\"\nSUB_UID_COUNT 0x\n"
	d, err := Parse(strings.NewReader(in), "/etc/login.defs")
	if err == nil {
		t.Fatal("no error")
	}
	var lines []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var le *errs.Input
		if !errors.As(e, &le) {
			t.Fatalf("not an *errs.Input: %v", e)
		}
		lines = append(lines, le.Line)
		key, _, _ := strings.Cut(le.Msg, ":")
		if le.Column != len(key)+2 {
			t.Errorf("%v: column %d, want %d", le, le.Column, len(key)+2)
		}
	}
	if len(lines) != 5 || lines[0] != 2 || lines[4] != 6 {
		t.Fatalf("error lines %v (%v)", lines, err)
	}
	if !strings.Contains(err.Error(), "/etc/login.defs:2:13: SUB_UID_MIN: \"100k\" is not a number") {
		t.Errorf("message: %v", err)
	}
	// Defaults stay in place of bad values.
	if d == nil || d.SubUIDMin.Value != 100000 || d.SubUIDMin.Line != 0 {
		t.Fatalf("defaults lost: %+v", d)
	}
}

func TestBadInput(t *testing.T) {
	// Binary junk and invalid UTF-8: nothing we read, so defaults, no panic.
	d, err := Parse(bytes.NewReader([]byte("\x7fELF\x00\x01\xff\xfe\n\x00SUB_UID_MIN 5\n")), "x")
	if err != nil || d.SubUIDMin.Value != 100000 {
		t.Fatalf("got %v %+v", err, d)
	}
	// A line longer than shadow's buffer on a key we read is an error, not
	// a misread; a 10 MB line is refused as a whole without reading it all.
	_, err = Parse(strings.NewReader("SUB_UID_MIN 1"+strings.Repeat("0", 2000)+"\n"), "x")
	if err == nil || !strings.Contains(err.Error(), "x:1:1: SUB_UID_MIN: line is 2013 bytes long") {
		t.Fatalf("long line: %v", err)
	}
	_, err = Parse(strings.NewReader("SUB_UID_MIN 1"+strings.Repeat("0", 10<<20)+"\n"), "x")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversize: %v", err)
	}
	dir := t.TempDir()
	_ = os.Mkdir(filepath.Join(dir, "login.defs"), 0o755)
	f, _ := os.Open(filepath.Join(dir, "login.defs"))
	defer f.Close()
	if _, err := Parse(f, "/etc/login.defs"); err == nil || !strings.Contains(err.Error(), "/etc/login.defs") {
		t.Fatalf("directory: %v", err)
	}
}

func TestEmpty(t *testing.T) {
	d, err := Parse(strings.NewReader(""), "x")
	if err != nil || *d != *withName(Defaults(), "x") {
		t.Fatalf("got %+v %v", d, err)
	}
}

func withName(d *Defs, n string) *Defs { d.Name = n; return d }
