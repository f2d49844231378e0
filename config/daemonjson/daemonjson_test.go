package daemonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/usernsctl/usernsctl/internal/errs"
)

const name = "/etc/docker/daemon.json"

// A kubeadm-era Ubuntu daemon.json, as the Kubernetes docs told people to
// write it.
const kubeadmStyle = `{
  "exec-opts": ["native.cgroupdriver=systemd"],
  "log-driver": "json-file",
  "log-opts": {
    "max-size": "100m"
  },
  "storage-driver": "overlay2",
  "data-root": "/srv/docker",
  "features": {"containerd-snapshotter": true}
}
`

func parse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(src), name)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestParseRealWorld(t *testing.T) {
	f := parse(t, kubeadmStyle)
	var keys []string
	for _, m := range f.Members {
		keys = append(keys, m.Key)
	}
	want := []string{"exec-opts", "log-driver", "log-opts", "storage-driver", "data-root", "features"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("members = %q, want %q", keys, want)
	}
	if m, _ := f.Lookup("data-root"); m.Line != 8 || m.Col != 3 {
		t.Errorf("data-root at %d:%d, want 8:3", m.Line, m.Col)
	}
	if s, ok, err := f.String("data-root"); s != "/srv/docker" || !ok || err != nil {
		t.Errorf("String(data-root) = %q %v %v", s, ok, err)
	}
	if _, ok, err := f.String("userns-remap"); ok || err != nil {
		t.Errorf("String(userns-remap) on a file without it = %v %v", ok, err)
	}
	if _, _, err := f.String("features"); err == nil || !strings.Contains(err.Error(), name+":9:3:") {
		t.Errorf("String(features) = %v, want a located type error", err)
	}
	feat := f.Values["features"].(map[string]any)
	if feat["containerd-snapshotter"] != true {
		t.Errorf("features = %v", feat)
	}
	if got := f.Location("log-driver"); got != name+" line 3" {
		t.Errorf("Location = %q", got)
	}
}

func TestParseEmptyAndBOM(t *testing.T) {
	for _, src := range []string{"", "\n", "  \n\t\n"} {
		f := parse(t, src)
		if !f.Empty || len(f.Values) != 0 {
			t.Errorf("Parse(%q): Empty=%v Values=%v, want an empty config as dockerd reads it", src, f.Empty, f.Values)
		}
	}
	f := parse(t, "\xEF\xBB\xBF{\"userns-remap\": \"default\"}\n")
	if !f.BOM || f.Values["userns-remap"] != "default" {
		t.Fatalf("BOM file: BOM=%v Values=%v", f.BOM, f.Values)
	}
	if m, _ := f.Lookup("userns-remap"); m.Line != 1 || m.Col != 2 {
		t.Errorf("key after BOM at %d:%d, want 1:2", m.Line, m.Col)
	}
	_, err := Parse(strings.NewReader("\xEF\xBB\xBF{\"a\": 1,}"), name)
	wantSyntax(t, err, 1, 9, "trailing comma")
}

func wantSyntax(t *testing.T, err error, line, col int, hint string) *errs.Input {
	t.Helper()
	var se *errs.Input
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *errs.Input", err)
	}
	if se.Line != line || se.Column != col {
		t.Errorf("error at %d:%d, want %d:%d (%v)", se.Line, se.Column, line, col, se)
	}
	if !strings.Contains(se.Error(), hint) {
		t.Errorf("error %q does not say %q", se.Error(), hint)
	}
	if !strings.HasPrefix(se.Error(), name+":") {
		t.Errorf("error %q does not start with the file name", se.Error())
	}
	return se
}

func TestParseBadInput(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		src       string
		line, col int
		say       string
	}{
		{"trailing comma", "{\n  \"userns-remap\": \"default\",\n}\n", 3, 1,
			"invalid character '}' looking for beginning of object key string (trailing comma: JSON allows no ',' before '}'; delete the ',' at line 2 column 28)"},
		{"trailing comma in array", "{\n  \"dns\": [\"1.1.1.1\",\n  ]\n}", 3, 3, "delete the ',' at line 2 column 20"},
		{"line comment", "{\n  // remap root\n  \"userns-remap\": \"default\"\n}\n", 2, 3, "JSON has no comments"},
		{"hash comment", "# docker config\n{}\n", 1, 1, "JSON has no comments"},
		{"block comment after member", "{\"a\": 1 /* x */}", 1, 9, "JSON has no comments"},
		{"two objects appended with >>", "{\"log-driver\": \"journald\"}\n{\"userns-remap\": \"default\"}\n", 2, 1,
			"after top-level value (a second JSON value follows the object"},
		{"single quotes", "{'userns-remap': 'default'}", 1, 2, "double quotes"},
		{"missing comma", "{\n  \"a\": 1\n  \"b\": 2\n}", 3, 3, "a ',' is missing"},
		{"unquoted key", "{userns-remap: default}", 1, 2, "keys must be double-quoted"},
		{"truncated", "{\n  \"userns-remap\": \"def", 2, 23, "the file ends inside a value"},
		{"top-level array", "\n  [\"userns-remap\"]", 2, 3, "the top-level value is an array, not an object"},
		{"top-level null", "null", 1, 1, "the top-level value is null"},
		{"invalid UTF-8 in a string", "{\n  \"label\": \"caf\xe9\"\n}", 2, 16, "invalid UTF-8"},
		{"binary", "\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe", 1, 11, "binary file"},
		{"control character in a string", "{\"a\": \"x\x01\"}", 1, 9, "in string literal"},
		{"multi-byte characters before the error", "{\"label\": \"ünïcödé\",}", 1, 21, "trailing comma"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.src), name)
			wantSyntax(t, err, tc.line, tc.col, tc.say)
		})
	}
}

func TestParseHugeLine(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	// 10 MB of junk on one line: located at its first byte, not scanned
	// into a panic or a hang.
	_, err := Parse(strings.NewReader(big), name)
	wantSyntax(t, err, 1, 1, "invalid character 'x'")

	// A 10 MB string value is valid JSON; a trailing comma after it is
	// located exactly.
	src := `{"label": "` + big + `",}`
	_, err = Parse(strings.NewReader(src), name)
	wantSyntax(t, err, 1, len(src), "trailing comma")

	f := parse(t, `{"label": "`+big+`"}`)
	if len(f.Values["label"].(string)) != 10<<20 {
		t.Fatal("10 MB value not read whole")
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse(bytes.NewReader(make([]byte, MaxSize+1)), name)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), name) {
		t.Fatalf("err = %v, want ErrTooLarge naming the file", err)
	}
}

func TestParseDirectory(t *testing.T) {
	d, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = Parse(d, name)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("Parse(directory) = %v, want an error naming the file and saying it is a directory", err)
	}
}

func TestDuplicates(t *testing.T) {
	f := parse(t, `{
  "userns-remap": "default",
  "features": {
    "containerd-snapshotter": false,
    "containerd-snapshotter": true
  },
  "userns-remap": "mapuser"
}`)
	want := []Duplicate{
		{Path: "features.containerd-snapshotter", Line: 5, Col: 5, First: 4},
		{Path: "userns-remap", Line: 7, Col: 3, First: 2},
	}
	if !reflect.DeepEqual(f.Duplicates, want) {
		t.Fatalf("Duplicates = %+v, want %+v", f.Duplicates, want)
	}
	// encoding/json keeps the last: so does Lookup.
	if m, _ := f.Lookup("userns-remap"); m.Line != 7 || f.Values["userns-remap"] != "mapuser" {
		t.Errorf("Lookup = line %d, value %v", m.Line, f.Values["userns-remap"])
	}
}

func TestDirectivesFlattenLikeDockerd(t *testing.T) {
	f := parse(t, `{
  "log-opts": {"max-size": "10m"},
  "tls-group": {
    "tlsverify": true,
    "tlscacert": "/etc/docker/ca.pem"
  },
  "features": {"containerd-snapshotter": true},
  "debug": true
}`)
	var got []string
	for _, d := range f.Directives() {
		got = append(got, d.Key)
	}
	want := []string{"log-opts", "tlsverify", "tlscacert", "features", "debug"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Directives = %q, want %q", got, want)
	}
	if d := f.Directives()[1]; d.Line != 4 || d.Value != true {
		t.Errorf("nested directive = %+v, want line 4 value true", d)
	}
}

func TestFlagKey(t *testing.T) {
	for flag, want := range map[string]string{
		"userns-remap": "userns-remap", "data-root": "data-root", "exec-opt": "exec-opts",
		"host": "hosts", "label": "labels", "log-opt": "log-opts", "storage-opt": "storage-opts",
		"insecure-registry": "insecure-registries", "feature": "features", "debug": "debug",
	} {
		if got, ok := FlagKey(flag); !ok || got != want {
			t.Errorf("FlagKey(%q) = %q %v, want %q", flag, got, ok, want)
		}
	}
	for _, flag := range []string{"add-runtime", "config-file", "validate"} {
		if k, ok := FlagKey(flag); ok {
			t.Errorf("FlagKey(%q) = %q, want none", flag, k)
		}
	}
	if LongFlag("H") != "host" || LongFlag("D") != "debug" || LongFlag("x") != "" {
		t.Error("LongFlag")
	}
	if !IsBoolFlag("debug") || IsBoolFlag("userns-remap") {
		t.Error("IsBoolFlag")
	}
	if r := RenamedFlags(); len(r) == 0 || !strings.Contains(strings.Join(r, "\n"), "--exec-opt → exec-opts") {
		t.Errorf("RenamedFlags = %q", r)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{kubeadmStyle, "", "{}", "{\"a\":1,}", "{\"a\":[{\"b\":{}}]}", "\xEF\xBB\xBF{}", "{\"a\":1}{}", "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(bytes.NewBuffer(b), name)
		if err != nil {
			var se *errs.Input
			if errors.As(err, &se) && (se.Line < 1 || se.Column < 1) {
				t.Fatalf("bad position %d:%d", se.Line, se.Column)
			}
			return
		}
		// Whatever parses is what encoding/json accepts as one object.
		body := bytes.TrimPrefix(b, utf8BOM)
		if !file.Empty {
			var v map[string]any
			if json.Unmarshal(body, &v) != nil {
				t.Fatalf("accepted %q, which encoding/json refuses", b)
			}
		}
		checkSetRoundTrip(t, file, "userns-remap", "default")
		for _, m := range file.Members {
			if _, err := file.only(m.Key); err != nil {
				continue
			}
			out, err := file.Remove(m.Key)
			if err != nil {
				t.Fatal(err)
			}
			g, err := Parse(bytes.NewBuffer(out), name)
			if err != nil {
				t.Fatalf("Remove(%q) on %q wrote %q, which does not parse: %v", m.Key, b, out, err)
			}
			want := copyMap(file.Values)
			delete(want, m.Key)
			if !reflect.DeepEqual(g.Values, want) {
				t.Fatalf("Remove(%q) on %q: values %v, want %v", m.Key, b, g.Values, want)
			}
		}
	})
}

// A number beyond float64 is refused as dockerd refuses it, at the number,
// in words without Go's type names.
func TestNumberOutOfRange(t *testing.T) {
	_, err := Parse(strings.NewReader("{\n  \"max-concurrent-downloads\": 1e400\n}\n"), "/etc/docker/daemon.json")
	se := wantSyntax(t, err, 2, 31, "write a number in range")
	if strings.Contains(se.Error(), "Go value") || !strings.Contains(se.Error(), "1e400 is out of range") {
		t.Errorf("%v", se)
	}
}

// utf16le encodes s as Windows PowerShell writes it: UTF-16LE with a BOM.
func utf16le(s string) string {
	b := []byte{0xFF, 0xFE}
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return string(b)
}

// dockerd 23 and later decode a UTF-16 file by its byte order mark; the
// editor keeps the encoding.
func TestParseUTF16(t *testing.T) {
	src := utf16le("{\r\n  \"debug\": true\r\n}\r\n")
	f := parse(t, src)
	if f.Encoding != "UTF-16LE" || f.Values["debug"] != true {
		t.Fatalf("Encoding=%q Values=%v", f.Encoding, f.Values)
	}
	if m, _ := f.Lookup("debug"); m.Line != 2 || m.Col != 3 {
		t.Errorf("key at %d:%d, want 2:3", m.Line, m.Col)
	}
	out, err := f.Set("userns-remap", "default")
	if err != nil {
		t.Fatal(err)
	}
	if want := utf16le("{\r\n  \"debug\": true,\r\n  \"userns-remap\": \"default\"\r\n}\r\n"); string(out) != want {
		t.Errorf("Set kept no UTF-16:\n%q\nwant\n%q", out, want)
	}
	be := "\xfe\xff\x00{\x00}"
	if f := parse(t, be); f.Encoding != "UTF-16BE" || len(f.Values) != 0 {
		t.Errorf("UTF-16BE: %q %v", f.Encoding, f.Values)
	}
	_, err = Parse(strings.NewReader(utf16le("{\"a\": 1,}")), name)
	wantSyntax(t, err, 1, 9, "trailing comma")
}

// dockerd 20.10 reads the first JSON value with json.Decoder.
func TestParseFirstValue(t *testing.T) {
	parse20 := func(src string) (*File, error) { return ParseAs(strings.NewReader(src), name, FirstValue) }
	f, err := parse20("{\"debug\": true}\n{\"userns-remap\": \"default\"}\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.Trailing == nil || f.Trailing.Line != 2 || f.Trailing.Col != 1 || !strings.HasPrefix(f.Trailing.Text, `{"userns-remap"`) {
		t.Fatalf("Trailing = %+v", f.Trailing)
	}
	if _, ok := f.Values["userns-remap"]; ok || f.Values["debug"] != true {
		t.Errorf("Values = %v: only the first object counts", f.Values)
	}
	out, err := f.Set("userns-remap", "default")
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"debug\": true, \"userns-remap\": \"default\"}\n{\"userns-remap\": \"default\"}\n"; string(out) != want {
		t.Errorf("Set = %q, want %q", out, want)
	}
	// Trailing garbage is never read either.
	if f, err := parse20("{}\n// managed by puppet\n"); err != nil || f.Trailing == nil {
		t.Errorf("comment after the object: %v %+v", err, f)
	}
	// Invalid UTF-8 inside a string reads as U+FFFD.
	if f, err := parse20("{\"label\": \"caf\xe9\"}"); err != nil || f.Values["label"] != "caf\ufffd" {
		t.Errorf("invalid UTF-8: %v", err)
	}
	for _, tc := range []struct {
		desc, src string
		line, col int
		say       string
	}{
		{"empty", "", 1, 1, "EOF"},
		{"whitespace only", "\n\n", 3, 1, "EOF"},
		{"UTF-8 BOM", "\xEF\xBB\xBF{}", 1, 1, "invalid character 'ï' looking for beginning of value"},
		{"UTF-16", utf16le("{}"), 1, 1, "invalid character 'ÿ'"},
		{"trailing comma", "{\"a\": 1,}", 1, 9, "trailing comma"},
		{"truncated", "{\"a\": \"x", 1, 9, "the file ends inside a value"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := parse20(tc.src)
			wantSyntax(t, err, tc.line, tc.col, tc.say)
		})
	}
}
