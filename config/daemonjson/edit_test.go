package daemonjson

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestCreate(t *testing.T) {
	got := string(Create("userns-remap", "default"))
	want := "{\n  \"userns-remap\": \"default\"\n}\n"
	if got != want {
		t.Fatalf("Create = %q, want %q", got, want)
	}
	f := parse(t, "")
	out, err := f.Set("userns-remap", "default")
	if err != nil || string(out) != want {
		t.Fatalf("Set on an empty file = %q %v, want %q", out, err, want)
	}
}

func TestSetKeepsBytes(t *testing.T) {
	for _, tc := range []struct{ desc, in, want string }{
		{"replace in place",
			"{\n  \"log-driver\": \"journald\",\n  \"userns-remap\":   \"mapuser\" ,\n  \"debug\": true\n}\n",
			"{\n  \"log-driver\": \"journald\",\n  \"userns-remap\":   \"default\" ,\n  \"debug\": true\n}\n"},
		{"replace a non-string value",
			"{\"userns-remap\": true}", "{\"userns-remap\": \"default\"}"},
		{"append, two-space indent",
			"{\n  \"log-driver\": \"journald\",\n  \"log-opts\": {\n    \"tag\": \"x\"\n  }\n}\n",
			"{\n  \"log-driver\": \"journald\",\n  \"log-opts\": {\n    \"tag\": \"x\"\n  },\n  \"userns-remap\": \"default\"\n}\n"},
		{"append, tab indent, no final newline",
			"{\n\t\"debug\": true\n}",
			"{\n\t\"debug\": true,\n\t\"userns-remap\": \"default\"\n}"},
		{"append, CRLF",
			"{\r\n    \"debug\": true\r\n}\r\n",
			"{\r\n    \"debug\": true,\r\n    \"userns-remap\": \"default\"\r\n}\r\n"},
		{"append, one line",
			"{\"debug\": true, \"iptables\": false}\n",
			"{\"debug\": true, \"iptables\": false, \"userns-remap\": \"default\"}\n"},
		{"append, one line, one member",
			"{\"debug\": true}", "{\"debug\": true, \"userns-remap\": \"default\"}"},
		{"append, compact",
			"{\"debug\":true}", "{\"debug\":true,\"userns-remap\":\"default\"}"},
		{"append, key-colon spacing kept",
			"{\n  \"debug\" : true\n}", "{\n  \"debug\" : true,\n  \"userns-remap\" : \"default\"\n}"},
		{"empty object", "{}\n", "{\n  \"userns-remap\": \"default\"\n}\n"},
		{"empty object with space", "{ }", "{\n  \"userns-remap\": \"default\"\n}"},
		{"empty object, indented", "  {\n  }\n", "  {\n    \"userns-remap\": \"default\"\n  }\n"},
		{"BOM kept", "\xEF\xBB\xBF{\"debug\": true}", "\xEF\xBB\xBF{\"debug\": true, \"userns-remap\": \"default\"}"},
		{"escaped key matched", "{\"userns\\u002dremap\": \"x\"}", "{\"userns\\u002dremap\": \"default\"}"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := parse(t, tc.in)
			out, err := f.Set("userns-remap", "default")
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("Set:\n got %q\nwant %q", out, tc.want)
			}
			checkSetRoundTrip(t, f, "userns-remap", "default")
		})
	}
}

func TestSetEscapes(t *testing.T) {
	f := parse(t, "{}")
	out, err := f.Set("label", `a"b\c<&>ü`)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"a\"b\\c<&>ü"`)) {
		t.Fatalf("Set wrote %q", out)
	}
	checkSetRoundTrip(t, f, "label", `a"b\c<&>ü`)
}

func TestSetRefusesDuplicateKey(t *testing.T) {
	f := parse(t, "{\n  \"userns-remap\": \"a\",\n  \"userns-remap\": \"b\"\n}")
	_, err := f.Set("userns-remap", "default")
	if err == nil || !strings.Contains(err.Error(), "lines 2, 3") {
		t.Fatalf("Set on a duplicated key = %v, want a refusal naming lines 2, 3", err)
	}
	// Other keys are still editable.
	if _, err := f.Set("debug", "x"); err != nil {
		t.Fatal(err)
	}
}

func TestRemove(t *testing.T) {
	for _, tc := range []struct{ desc, in, key, want string }{
		{"middle", "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3\n}\n", "b", "{\n  \"a\": 1,\n  \"c\": 3\n}\n"},
		{"first", "{\n  \"a\": 1,\n  \"b\": 2\n}\n", "a", "{\n  \"b\": 2\n}\n"},
		{"last", "{\n  \"a\": 1,\n  \"b\": 2\n}\n", "b", "{\n  \"a\": 1\n}\n"},
		{"only", "{\n  \"a\": 1\n}\n", "a", "{}\n"},
		{"absent", "{\"a\": 1}", "z", "{\"a\": 1}"},
		{"one line", "{\"a\": 1, \"b\": {\"x\": [1, 2]}, \"c\": 3}", "b", "{\"a\": 1, \"c\": 3}"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := parse(t, tc.in)
			out, err := f.Remove(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("Remove(%s):\n got %q\nwant %q", tc.key, out, tc.want)
			}
			g := parse(t, string(out))
			want := copyMap(f.Values)
			delete(want, tc.key)
			if !reflect.DeepEqual(g.Values, want) {
				t.Fatalf("after Remove values = %v, want %v", g.Values, want)
			}
		})
	}
}

func TestSetRoundTripRealWorld(t *testing.T) {
	for _, src := range []string{
		kubeadmStyle,
		"{\n    \"userns-remap\": \"default\",\n    \"iptables\": false,\n    \"bridge\": \"none\"\n}\n",
		"{\"registry-mirrors\":[\"https://mirror.example\"],\"insecure-registries\":[\"10.0.0.0/8\"]}",
		"{\n\t\"default-runtime\": \"crun\",\n\t\"runtimes\": {\n\t\t\"crun\": {\"path\": \"/usr/bin/crun\"}\n\t}\n}",
		"{\"max-concurrent-downloads\": 12345678901234567890}",
	} {
		f := parse(t, src)
		for _, v := range []string{"default", "mapuser:mapgroup", "1500:1500"} {
			checkSetRoundTrip(t, f, "userns-remap", v)
			checkSetRoundTrip(t, f, "brand-new-key", v)
		}
	}
}

// checkSetRoundTrip asserts parse(set(x)) has key = value and every other
// value unchanged, and that setting it again changes no byte.
func checkSetRoundTrip(t testing.TB, f *File, key, value string) {
	t.Helper()
	if _, err := f.only(key); err != nil {
		return // duplicated keys are refused, tested elsewhere
	}
	out, err := f.Set(key, value)
	if err != nil {
		t.Fatalf("Set(%q) on %q: %v", key, f.Src, err)
	}
	g, err := Parse(bytes.NewBuffer(out), f.Name)
	if err != nil {
		t.Fatalf("Set(%q) on %q wrote %q, which does not parse: %v", key, f.Src, out, err)
	}
	want := copyMap(f.Values)
	want[key] = value
	if !reflect.DeepEqual(g.Values, want) {
		t.Fatalf("Set(%q) on %q: values %v, want %v", key, f.Src, g.Values, want)
	}
	again, err := g.Set(key, value)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("second Set(%q) changed %q into %q (%v)", key, out, again, err)
	}
	if f.BOM != g.BOM && !f.Empty {
		t.Fatalf("Set changed the BOM")
	}
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
