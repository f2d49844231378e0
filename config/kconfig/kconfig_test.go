package kconfig

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// Excerpts of real distro configs: the header, the namespace block and a
// few value forms around it.
const debian12 = `#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.0-26-amd64 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14) 12.2.0"
CONFIG_CC_IS_GCC=y
CONFIG_GCC_VERSION=120200
CONFIG_LOCALVERSION=""
# CONFIG_LOCALVERSION_AUTO is not set
CONFIG_DEFAULT_HOSTNAME="(none)"
CONFIG_PHYSICAL_START=0x1000000
CONFIG_NAMESPACES=y
CONFIG_UTS_NS=y
CONFIG_TIME_NS=y
CONFIG_IPC_NS=y
CONFIG_USER_NS=y
CONFIG_PID_NS=y
CONFIG_NET_NS=y
CONFIG_OVERLAY_FS=m
# CONFIG_OVERLAY_FS_REDIRECT_DIR is not set
`

const rhel7 = "# Automatically generated file; DO NOT EDIT.\r\n" +
	"# Linux/x86_64 3.10.0-1160.el7.x86_64 Kernel Configuration\r\n" +
	"#\r\n" +
	"CONFIG_64BIT=y\r\n" +
	"CONFIG_NAMESPACES=y\r\n" +
	"CONFIG_UTS_NS=y\r\n" +
	"CONFIG_IPC_NS=y\r\n" +
	"CONFIG_USER_NS=y\r\n" +
	"CONFIG_PID_NS=y\r\n" +
	"CONFIG_NET_NS=y\r\n" +
	`CONFIG_CMDLINE="console=ttyS0 \"quoted\" back\\slash"` + "\r\n"

const ubuntu2404 = `#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.8.0-45-generic Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="x86_64-linux-gnu-gcc-13 (Ubuntu 13.2.0-23ubuntu4) 13.2.0"
CONFIG_VERSION_SIGNATURE="Ubuntu 6.8.0-45.45-generic 6.8.12"
CONFIG_NAMESPACES=y
CONFIG_USER_NS=y
CONFIG_SECURITY_APPARMOR_RESTRICT_USERNS=y
CONFIG_LSM="landlock,lockdown,yama,integrity,apparmor"
`

const rhel9 = `#
# Automatically generated file; DO NOT EDIT.
# Linux/x86_64 5.14.0-427.13.1.el9_4.x86_64 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (GCC) 11.4.1 20231218 (Red Hat 11.4.1-3)"
CONFIG_RHEL_DIFFERENCES=y
CONFIG_NAMESPACES=y
CONFIG_USER_NS=y
CONFIG_NR_CPUS=8192
`

const fedora40 = `# x86_64
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86_64 6.10.11-200.fc40.x86_64 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (GCC) 14.2.1 20240912 (Red Hat 14.2.1-3)"
CONFIG_BUILD_SALT="6.10.11-200.fc40.x86_64"
CONFIG_USER_NS=y
CONFIG_LSM="lockdown,yama,integrity,selinux,bpf,landlock"
`

// A custom embedded kernel with namespaces partly off.
const custom = `CONFIG_NAMESPACES=y
CONFIG_UTS_NS=y
# CONFIG_USER_NS is not set
CONFIG_PID_NS=n
CONFIG_NET_NS=m
`

func TestParseRealConfigs(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]Option
	}{
		{"debian12", debian12, map[string]Option{
			"USER_NS":                 {Name: "USER_NS", State: BuiltIn, Value: "y", Line: 16},
			"CONFIG_NET_NS":           {Name: "NET_NS", State: BuiltIn, Value: "y", Line: 18},
			"OVERLAY_FS":              {Name: "OVERLAY_FS", State: Module, Value: "m", Line: 19},
			"OVERLAY_FS_REDIRECT_DIR": {Name: "OVERLAY_FS_REDIRECT_DIR", State: NotSet, Value: "n", Line: 20},
			"CC_VERSION_TEXT":         {Name: "CC_VERSION_TEXT", State: Valued, Value: "gcc-12 (Debian 12.2.0-14) 12.2.0", Line: 5},
			"LOCALVERSION":            {Name: "LOCALVERSION", State: Valued, Value: "", Line: 8},
			"PHYSICAL_START":          {Name: "PHYSICAL_START", State: Valued, Value: "0x1000000", Line: 11},
			"BPF":                     {Name: "BPF", State: Absent},
		}},
		{"rhel7 (CRLF)", rhel7, map[string]Option{
			"USER_NS": {Name: "USER_NS", State: BuiltIn, Value: "y", Line: 8},
			"CMDLINE": {Name: "CMDLINE", State: Valued, Value: `console=ttyS0 "quoted" back\slash`, Line: 11},
			"TIME_NS": {Name: "TIME_NS", State: Absent},
		}},
		{"ubuntu 24.04", ubuntu2404, map[string]Option{
			"USER_NS":                           {Name: "USER_NS", State: BuiltIn, Value: "y", Line: 8},
			"SECURITY_APPARMOR_RESTRICT_USERNS": {Name: "SECURITY_APPARMOR_RESTRICT_USERNS", State: BuiltIn, Value: "y", Line: 9},
			"VERSION_SIGNATURE":                 {Name: "VERSION_SIGNATURE", State: Valued, Value: "Ubuntu 6.8.0-45.45-generic 6.8.12", Line: 6},
		}},
		{"rhel9", rhel9, map[string]Option{
			"USER_NS":    {Name: "USER_NS", State: BuiltIn, Value: "y", Line: 8},
			"NR_CPUS":    {Name: "NR_CPUS", State: Valued, Value: "8192", Line: 9},
			"IPC_NS":     {Name: "IPC_NS", State: Absent},
			"NET_NS":     {Name: "NET_NS", State: Absent},
			"NAMESPACES": {Name: "NAMESPACES", State: BuiltIn, Value: "y", Line: 7},
		}},
		{"fedora40", fedora40, map[string]Option{
			"USER_NS": {Name: "USER_NS", State: BuiltIn, Value: "y", Line: 8},
			"LSM":     {Name: "LSM", State: Valued, Value: "lockdown,yama,integrity,selinux,bpf,landlock", Line: 9},
		}},
		{"custom", custom, map[string]Option{
			"USER_NS": {Name: "USER_NS", State: NotSet, Value: "n", Line: 3},
			"PID_NS":  {Name: "PID_NS", State: NotSet, Value: "n", Line: 4},
			"NET_NS":  {Name: "NET_NS", State: Module, Value: "m", Line: 5},
			"IPC_NS":  {Name: "IPC_NS", State: Absent},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.text), "/boot/config-x")
			if err != nil {
				t.Fatal(err)
			}
			if c.Gzip {
				t.Error("plain text reported as gzip")
			}
			for name, want := range tt.want {
				if got := c.Lookup(name); got != want {
					t.Errorf("Lookup(%s) = %+v, want %+v", name, got, want)
				}
			}
		})
	}
}

func TestParseGzipByMagic(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(debian12))
	zw.Close()
	// The name says nothing about compression: detection is by content.
	c, err := Parse(&buf, "/proc/config.gz")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Gzip {
		t.Error("gzip input not detected")
	}
	if o := c.Lookup("USER_NS"); o.State != BuiltIn || o.Line != 16 {
		t.Errorf("USER_NS = %+v", o)
	}
	if c.Where(c.Lookup("USER_NS")) != "/proc/config.gz line 16" {
		t.Errorf("Where = %q", c.Where(c.Lookup("USER_NS")))
	}
}

func TestLaterAssignmentWins(t *testing.T) {
	c, err := Parse(strings.NewReader("CONFIG_USER_NS=y\n# CONFIG_USER_NS is not set\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Lookup("USER_NS"); o.State != NotSet || o.Line != 2 {
		t.Errorf("got %+v", o)
	}
}

func TestParseBadInput(t *testing.T) {
	var brokenGzip bytes.Buffer
	zw := gzip.NewWriter(&brokenGzip)
	zw.Write(bytes.Repeat([]byte("CONFIG_USER_NS=y\n"), 1000))
	zw.Close()
	truncated := brokenGzip.Bytes()[:brokenGzip.Len()/2]

	tests := []struct {
		name, in string
		line     int
		col      int
		msg      string
	}{
		{"binary", "CONFIG_A=y\n\x7fELF\x02\x01\x01\x00\x00", 2, 8, "NUL byte"},
		{"invalid utf8", "CONFIG_A=y\nCONFIG_B=\"caf\xe9\"\n", 2, 14, "invalid UTF-8"},
		{"10 MB line", "CONFIG_A=y\n" + strings.Repeat("x", 10<<20) + "\n", 2, 0, "line longer than"},
		{"prose", "CONFIG_A=y\nhello world\n", 2, 1, "unexpected"},
		{"no equals", "  CONFIG_A y\n", 1, 3, "no '='"},
		{"bad name", "CONFIG_A-B=y\n", 1, 1, "invalid option name"},
		{"unterminated", "CONFIG_S=\"abc\n", 1, 10, "unterminated"},
		{"after quote", "CONFIG_S=\"abc\" x\n", 1, 10, "after the closing quote"},
		{"spaced value", "CONFIG_S=a b\n", 1, 10, "unexpected value"},
		{"truncated gzip", string(truncated), 0, 0, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in), "/boot/config-6.1.0")
			var e *errs.Input
			if !errors.As(err, &e) {
				t.Fatalf("want *errs.Input, got %v", err)
			}
			if e.File != "/boot/config-6.1.0" || e.Line != tt.line || e.Column != tt.col || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got %v (line %d col %d), want line %d col %d containing %q", err, e.Line, e.Column, tt.line, tt.col, tt.msg)
			}
			if len(err.Error()) > 300 {
				t.Errorf("message not clipped: %d bytes", len(err.Error()))
			}
		})
	}
}

func TestParseGzipBombIsBounded(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	chunk := bytes.Repeat([]byte("CONFIG_A=y\n"), 1<<16)
	for n := 0; n <= MaxSize; n += len(chunk) {
		zw.Write(chunk)
	}
	zw.Close()
	_, err := Parse(&buf, "/proc/config.gz")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

func TestCandidates(t *testing.T) {
	got := Candidates("6.8.0-45-generic")
	want := []string{
		"/proc/config.gz",
		"/boot/config-6.8.0-45-generic",
		"/usr/lib/modules/6.8.0-45-generic/config",
		"/lib/modules/6.8.0-45-generic/build/.config",
		"/usr/src/linux-6.8.0-45-generic/.config",
		"/usr/src/linux/.config",
		"/usr/lib/ostree-boot/config-6.8.0-45-generic",
		"/usr/lib/kernel/config-6.8.0-45-generic",
		"/usr/src/linux-headers-6.8.0-45-generic/.config",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Candidates = %q", got)
	}
	for _, rel := range []string{"", "../../etc"} {
		for _, p := range Candidates(rel) {
			if strings.Contains(p, "..") || strings.HasSuffix(p, "-") {
				t.Errorf("Candidates(%q) has %q", rel, p)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(debian12))
	f.Add([]byte(custom))
	f.Add([]byte("CONFIG_S=\"\\"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(bytes.NewReader(b), "fuzz")
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
	})
}
