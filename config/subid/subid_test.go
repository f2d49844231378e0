package subid

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parse(t *testing.T, s string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(s), "/etc/subuid")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestRealWorldForms(t *testing.T) {
	// useradd on Debian/Ubuntu, a numeric owner (field case 7), the kubelet
	// example from the Kubernetes docs, and a range reaching the last id.
	in := "ubuntu:100000:65536\ndockremap:165536:65536\n20592:3900000:100000\nkubelet:65536:7208960\nlast:4294901760:65536\n"
	f := parse(t, in)
	if ps := f.Problems(); len(ps) != 0 {
		t.Fatalf("problems in a valid file: %v", f.Err())
	}
	want := []Range{
		NewRange("ubuntu", 100000, 65536), NewRange("dockremap", 165536, 65536), NewRange("20592", 3900000, 100000),
		NewRange("kubelet", 65536, 7208960), NewRange("last", 4294901760, 65536),
	}
	got := f.Ranges()
	if len(got) != len(want) {
		t.Fatalf("got %d ranges, want %d", len(got), len(want))
	}
	for i, l := range got {
		if l.Range != want[i] || l.No != i+1 {
			t.Errorf("line %d: got %+v, want %+v", l.No, l.Range, want[i])
		}
	}
	if uid, ok := got[2].Range.OwnerUID(); !ok || uid != 20592 {
		t.Errorf("numeric owner: got %d %v", uid, ok)
	}
	if _, ok := got[0].Range.OwnerUID(); ok {
		t.Errorf("name owner read as a uid")
	}
	if got[4].Range.Last() != MaxID {
		t.Errorf("last id: %d", got[4].Range.Last())
	}
	if !bytes.Equal(f.Bytes(), []byte(in)) {
		t.Errorf("render changed the file")
	}
}

func TestMalformedLines(t *testing.T) {
	cases := []struct {
		line string
		kind Kind
		col  int
		why  string
	}{
		{"alice:100000", Malformed, 0, "2 field(s)"},
		{"alice", Malformed, 0, "1 field(s)"},
		{"alice:100000:65536:extra", Malformed, 19, "4 fields"},
		{":100000:65536", Malformed, 1, "empty owner"},
		{"alice::65536", BadNumber, 7, "empty start"},
		{"alice:100000:", BadNumber, 14, "empty count"},
		{"alice:1e5:65536", BadNumber, 7, `start "1e5" is not a decimal`},
		{"alice:-1:65536", BadNumber, 7, "not a decimal"},
		{"alice:+100000:65536", BadNumber, 7, "not a decimal"},
		{"alice:0x186a0:65536", BadNumber, 7, "not a decimal"},
		{"alice:0100000:65536", BadNumber, 7, "leading zero"},
		{"alice:100000:0", BadNumber, 14, "count 0"},
		{"alice:4294967296:1", BadNumber, 7, "above 4294967295"},
		{"alice:99999999999:1", BadNumber, 7, "above 4294967295"},
		{"alice:4294967295:2", BadNumber, 18, "passes the last id"},
		{"alice:100000:4294967295", BadNumber, 14, "passes the last id"},
		{" alice:100000:65536", Malformed, 1, "whitespace"},
		{"al ice:100000:65536", Malformed, 3, "whitespace"},
		{"alice:100000:65536 ", BadNumber, 14, "not a decimal"},
		{"alice:100000:65536\r", CRLF, 19, "carriage return"},
		{"4294967295:100000:65536", Malformed, 1, "not a valid uid"},
		{"# managed by ansible", Comment, 1, "comment line"},
		{"", Blank, 0, "empty line"},
		{"alice\x00:1:2", Binary, 6, "NUL byte"},
		{"al\xffice:1:2", Binary, 3, "invalid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {

			f := parse(t, "ok:100000:65536\n"+c.line+"\n")
			ps := f.Problems()
			if len(ps) != 1 {
				t.Errorf("%q: got %d problems %v, want 1", c.line, len(ps), f.Err())
				return
			}
			p := ps[0]
			if p.Line != 2 || p.Kind != c.kind || p.Column != c.col || !strings.Contains(p.Msg, c.why) {
				t.Errorf("%q: got line %d kind %d col %d %q; want line 2 kind %d col %d containing %q",
					c.line, p.Line, p.Kind, p.Column, p.Msg, c.kind, c.col, c.why)
			}
			if !strings.HasPrefix(p.Error(), "/etc/subuid:2") {
				t.Errorf("%q: error %q does not name file:line", c.line, p.Error())
			}
			if len(f.Ranges()) != 1 {
				t.Errorf("%q: the valid line was lost", c.line)
			}
		})
	}
}

func TestEveryMalformedLineIsReported(t *testing.T) {
	f := parse(t, "a:1:1\n#x\nb\n\nc:2:2\nd:0:0\n")
	var lines []int
	for _, p := range f.Problems() {
		lines = append(lines, p.Line)
	}
	if fmt.Sprint(lines) != "[2 3 4 6]" {
		t.Fatalf("problem lines %v, want [2 3 4 6]", lines)
	}
}

func TestMissingTrailingNewline(t *testing.T) {
	f := parse(t, "a:100000:65536\nb:165536:65536")
	ps := f.Problems()
	if len(ps) != 1 || ps[0].Kind != NoNewline || ps[0].Line != 2 {
		t.Fatalf("got %v", f.Err())
	}
	if len(f.Ranges()) != 2 {
		t.Fatalf("the last line is still a range: got %d ranges", len(f.Ranges()))
	}
	if !f.EnsureFinalNewline() || f.EnsureFinalNewline() {
		t.Fatalf("EnsureFinalNewline must change the file once")
	}
	if string(f.Bytes()) != "a:100000:65536\nb:165536:65536\n" {
		t.Fatalf("got %q", f.Bytes())
	}
	if len(f.Problems()) != 0 {
		t.Fatalf("still reported: %v", f.Err())
	}
}

func TestEmptyFile(t *testing.T) {
	f := parse(t, "")
	if len(f.Lines) != 0 || len(f.Problems()) != 0 || !f.HasFinalNewline() {
		t.Fatalf("empty file: %d lines, %v", len(f.Lines), f.Err())
	}
}

func TestAppendKeepsEveryOtherByte(t *testing.T) {
	// Odd but legal-to-keep content: a comment, a CRLF line, a
	// numeric owner, no final newline. Append must not touch any of it.
	orig := "# keep me\r\nalice:100000:65536\r\n20592:3900000:100000\nbob:165536:65536"
	f := parse(t, orig)
	l, err := f.Append(NewRange("dockremap", 231072, 65536))
	if err != nil {
		t.Fatal(err)
	}
	if l.No != 5 || !l.Valid() || string(l.Raw) != "dockremap:231072:65536" {
		t.Fatalf("appended line: %+v", l)
	}
	want := orig + "\ndockremap:231072:65536\n"
	if got := string(f.Bytes()); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if _, err := f.Append(NewRange("kubelet", 65536, 7208960)); err != nil {
		t.Fatal(err)
	}
	want += "kubelet:65536:7208960\n"
	if got := string(f.Bytes()); got != want {
		t.Fatalf("second append: got %q", got)
	}
	// The rendering parses back to the same lines.
	g := parse(t, string(f.Bytes()))
	all := append(append([]Line{}, f.Lines...), f.Added...)
	if len(g.Lines) != len(all) {
		t.Fatalf("re-parse: %d lines, want %d", len(g.Lines), len(all))
	}
	for i := range g.Lines {
		if g.Lines[i].Raw != all[i].Raw {
			t.Errorf("line %d: %q vs %q", i+1, g.Lines[i].Raw, all[i].Raw)
		}
	}
}

func TestAppendRefusesInvalid(t *testing.T) {
	f := parse(t, "a:1:1\n")
	for _, r := range []Range{
		NewRange("", 1, 1), NewRange("x y", 1, 1), NewRange("a:b", 1, 1), NewRange("x", 1, 0), NewRange("x", 4294967295, 2), NewRange("x\n", 1, 1),
	} {
		if _, err := f.Append(r); err == nil {
			t.Errorf("Append(%+v) succeeded", r)
		}
	}
	if string(f.Bytes()) != "a:1:1\n" {
		t.Fatalf("a refused append changed the file: %q", f.Bytes())
	}
}

func TestBinaryFile(t *testing.T) {
	// An ELF header and random-looking bytes where /etc/subuid should be.
	junk := []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x01\x00\x00\x00\n\xff\xfe\xfd:1:2\n")
	f, err := Parse(bytes.NewReader(junk), "/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}
	ps := f.Problems()
	if len(ps) != 2 || ps[0].Kind != Binary || ps[1].Kind != Binary {
		t.Fatalf("got %v", f.Err())
	}
	if !bytes.Equal(f.Bytes(), junk) {
		t.Fatalf("render changed binary input")
	}
}

func TestLongLine(t *testing.T) {
	long := strings.Repeat("a", 10<<20)
	f := parse(t, "ok:1:1\n"+long+":1:1\nok2:2:2\n")
	ps := f.Problems()
	if len(ps) != 1 || ps[0].Kind != TooLong || ps[0].Line != 2 {
		t.Fatalf("got %d problems", len(ps))
	}
	if len(ps[0].Msg) > 200 {
		t.Fatalf("message carries the line: %d bytes", len(ps[0].Msg))
	}
	if len(f.Ranges()) != 2 {
		t.Fatalf("lines around the long one lost")
	}
	// A line just at shadow's limit is still parsed.
	edge := strings.Repeat("b", MaxLine-len(":1:1")) + ":1:1"
	if g := parse(t, edge+"\n"); len(g.Problems()) != 0 {
		t.Fatalf("a %d-byte line rejected: %v", len(edge), g.Err())
	}
	if g := parse(t, "b"+edge+"\n"); len(g.Problems()) != 1 {
		t.Fatalf("a %d-byte line accepted", len(edge)+1)
	}
}

func TestTooLarge(t *testing.T) {
	r := &zeros{n: MaxSize + 10}
	_, err := Parse(r, "/etc/subuid")
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "/etc/subuid") {
		t.Fatalf("got %v", err)
	}
	if r.read > MaxSize+1 {
		t.Fatalf("read %d bytes past the limit", r.read)
	}
}

type zeros struct{ n, read int }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, nil
	}
	k := min(len(p), z.n)
	clear(p[:k])
	z.n -= k
	z.read += k
	return k, nil
}

func TestDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "subuid"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(filepath.Join(dir, "subuid"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = Parse(d, "/etc/subuid")
	if err == nil || !strings.Contains(err.Error(), "/etc/subuid") || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("got %v", err)
	}
}

func TestRangeHelpers(t *testing.T) {
	a, b := NewRange("a", 100, 10), NewRange("b", 109, 5)
	if !a.Overlaps(b.Range) || !b.Overlaps(a.Range) || a.Overlaps(NewRange("c", 110, 1).Range) {
		t.Fatal("Overlaps")
	}
	if !a.Contains(109) || a.Contains(110) || a.Contains(99) {
		t.Fatal("Contains")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("a:100000:65536\n"))
	f.Add([]byte("#c\n\n1000:1:2\r\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(bytes.NewReader(b), "fuzz")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(file.Bytes(), b) {
			t.Fatal("render is not byte-identical")
		}
		for _, l := range file.Ranges() {
			if l.Range.Count == 0 || l.Range.End() > Space {
				t.Fatalf("accepted %+v", l.Range)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		var buf bytes.Buffer
		for i := range n {
			fmt.Fprintf(&buf, "user%d:%d:65536\n", i, 100000+i*65536%4000000000)
		}
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			for b.Loop() {
				if _, err := Parse(bytes.NewReader(buf.Bytes()), "/etc/subuid"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// An alias shares the parse but is its own file: its name, its appends.
func TestAlias(t *testing.T) {
	f := parse(t, "alice:100000:65536\nbob:165536:65536")
	g := f.Alias("/etc/subgid")
	if g == nil || g.Name != "/etc/subgid" || len(g.Ranges()) != 2 || &g.Lines[0] != &f.Lines[0] {
		t.Fatalf("alias %+v", g)
	}
	if _, err := g.Append(NewRange("carol", 231072, 65536)); err != nil {
		t.Fatal(err)
	}
	if len(f.Ranges()) != 2 || len(g.Ranges()) != 3 || strings.Contains(string(f.Bytes()), "carol") {
		t.Error("an append to the alias changed the original")
	}
	if ps := g.Problems(); len(ps) != 0 {
		t.Errorf("the alias owes no newline after its append: %v", ps)
	}
	if ps := f.Problems(); len(ps) != 1 || ps[0].Kind != NoNewline || ps[0].File != "/etc/subuid" {
		t.Errorf("the original still lacks its final newline: %v", ps)
	}
	if parse(t, "alice:1\n").Alias("y") != nil {
		t.Error("a file with a bad line must not be aliased: its problems name it")
	}
}

// A byte order mark is part of the first owner for every reader: reported
// at line 1, column 1, and the line is not a range of "alice".
func TestByteOrderMark(t *testing.T) {
	f := parse(t, "\ufeffalice:100000:65536\nbob:165536:65536\n")
	ps := f.Problems()
	if len(ps) != 1 || ps[0].Kind != BOM || ps[0].Line != 1 || ps[0].Column != 1 || len(f.Ranges()) != 1 {
		t.Fatalf("problems %v, ranges %d", ps, len(f.Ranges()))
	}
}
