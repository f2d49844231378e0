// Package udiff renders the unified diff that `usernsctl apply --dry-run`
// shows: the same hunks `diff -u` prints (3 lines of context, deletions
// before insertions, "\ No newline at end of file"), with host paths in the
// headers instead of timestamps.
//
// The line matching is Myers' O(ND) algorithm in its linear-space form
// (middle snake, divide and conquer), so a one-line change to a
// 100,000-line /etc/subuid costs one pass, and a wholesale rewrite is cut
// off by a cost limit instead of running quadratic: past it the region is
// reported as replaced, which is still a correct diff, just not a minimal
// one (GNU diff has the same kind of cut-off).
package udiff

import (
	"bytes"
	"fmt"
	"strings"
)

// Context is the number of unchanged lines shown around a change.
const Context = 3

// DevNull names the missing side of a created or deleted file.
const DevNull = "/dev/null"

// costLimit bounds the edit distance searched exactly in one region.
const costLimit = 4096

// Unified returns the unified diff from a (named oldName) to b (named
// newName), or "" when they are equal. Content holding a NUL byte is
// reported the way diff does, as "Binary files ... differ".
func Unified(oldName, newName string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	if bytes.IndexByte(a, 0) >= 0 || bytes.IndexByte(b, 0) >= 0 {
		return fmt.Sprintf("Binary files %s and %s differ\n", oldName, newName)
	}
	// Only the region between the common leading and trailing lines (plus
	// the context around it) is split and matched: apply's typical change
	// is one line in a long file.
	skip, a, b := trim(a, b)
	al, bl := splitLines(a), splitLines(b)
	ai, bi := intern(al, bl)
	d := &differ{a: ai, b: bi, del: make([]bool, len(ai)), ins: make([]bool, len(bi))}
	d.compare(0, len(ai), 0, len(bi))

	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
	for _, h := range hunks(d.script()) {
		h.write(&sb, al, bl, skip)
	}
	return sb.String()
}

// trim cuts the whole lines a and b share at both ends, keeping Context of
// them next to the difference, and returns how many lines it cut in front.
func trim(a, b []byte) (skip int, ta, tb []byte) {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	p = bytes.LastIndexByte(a[:p], '\n') + 1 // back to a line start
	for range Context {
		if p == 0 {
			break
		}
		p = bytes.LastIndexByte(a[:p-1], '\n') + 1
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	// The kept suffix must start a line in both files.
	lineStart := func(x []byte, i int) bool { return i == p || x[i-1] == '\n' }
	for s > 0 && !(lineStart(a, len(a)-s) && lineStart(b, len(b)-s)) {
		s--
	}
	for range Context {
		if s == 0 {
			break
		}
		i := bytes.IndexByte(a[len(a)-s:], '\n')
		s -= i + 1
	}
	return bytes.Count(a[:p], []byte{'\n'}), a[p : len(a)-s], b[p : len(b)-s]
}

// splitLines splits s after each "\n"; a last line without one keeps its
// missing newline, so "x" and "x\n" are different lines, as in diff.
func splitLines(s []byte) []string {
	var out []string
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, string(s))
			break
		}
		out = append(out, string(s[:i+1]))
		s = s[i+1:]
	}
	return out
}

// intern maps equal lines to equal ints so the search compares integers.
func intern(a, b []string) ([]int, []int) {
	ids := map[string]int{}
	conv := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	return conv(a), conv(b)
}

type differ struct {
	a, b     []int
	del, ins []bool // lines of a deleted, lines of b inserted
}

// compare marks the edits that turn a[aLo:aHi] into b[bLo:bHi].
func (d *differ) compare(aLo, aHi, bLo, bHi int) {
	for aLo < aHi && bLo < bHi && d.a[aLo] == d.b[bLo] {
		aLo, bLo = aLo+1, bLo+1
	}
	for aLo < aHi && bLo < bHi && d.a[aHi-1] == d.b[bHi-1] {
		aHi, bHi = aHi-1, bHi-1
	}
	switch {
	case aLo == aHi:
		for j := bLo; j < bHi; j++ {
			d.ins[j] = true
		}
		return
	case bLo == bHi:
		for i := aLo; i < aHi; i++ {
			d.del[i] = true
		}
		return
	}
	x, y, ok := midSnake(d.a[aLo:aHi], d.b[bLo:bHi])
	// A split at a corner would not make progress; it cannot happen once
	// both ends are trimmed, but a diff must never loop.
	if !ok || (x == 0 && y == 0) || (x == aHi-aLo && y == bHi-bLo) {
		for i := aLo; i < aHi; i++ {
			d.del[i] = true
		}
		for j := bLo; j < bHi; j++ {
			d.ins[j] = true
		}
		return
	}
	d.compare(aLo, aLo+x, bLo, bLo+y)
	d.compare(aLo+x, aHi, bLo+y, bHi)
}

// midSnake finds a point (x, y) on a shortest edit path from a to b by
// searching forward from the start and backward from the end until the
// furthest-reaching paths meet (Myers 1986, section 4b). ok is false when
// the edit distance exceeds costLimit.
func midSnake(a, b []int) (x, y int, ok bool) {
	n, m := len(a), len(b)
	maxD := (n + m + 1) / 2
	if maxD > costLimit {
		maxD = costLimit
	}
	off := maxD + 1
	vf := make([]int, 2*maxD+3) // forward: furthest x on diagonal k = x-y
	vb := make([]int, 2*maxD+3) // backward, in reversed coordinates
	delta := n - m
	odd := delta&1 != 0
	for d := 0; d <= maxD; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && vf[off+k-1] < vf[off+k+1]) {
				x = vf[off+k+1]
			} else {
				x = vf[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			vf[off+k] = x
			if kr := delta - k; odd && kr >= -(d-1) && kr <= d-1 && x+vb[off+kr] >= n {
				return x, y, true
			}
		}
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && vb[off+k-1] < vb[off+k+1]) {
				x = vb[off+k+1]
			} else {
				x = vb[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[n-1-x] == b[m-1-y] {
				x, y = x+1, y+1
			}
			vb[off+k] = x
			if kf := delta - k; !odd && kf >= -d && kf <= d && x+vf[off+kf] >= n {
				return n - x, m - y, true
			}
		}
	}
	return 0, 0, false
}

// op is one line of the edit script: ' ' keep, '-' delete, '+' insert;
// i and j are the line indexes in a and b it stands at.
type op struct {
	kind byte
	i, j int
}

// script lists the edits in diff's order: within a change, deletions
// before insertions.
func (d *differ) script() []op {
	var out []op
	i, j := 0, 0
	for i < len(d.a) || j < len(d.b) {
		switch {
		case i < len(d.a) && d.del[i]:
			out = append(out, op{'-', i, j})
			i++
		case j < len(d.b) && d.ins[j]:
			out = append(out, op{'+', i, j})
			j++
		default:
			out = append(out, op{' ', i, j})
			i, j = i+1, j+1
		}
	}
	return out
}

type hunk struct{ ops []op }

// hunks groups the script into hunks with Context lines around each
// change; changes separated by at most 2*Context unchanged lines share a
// hunk, as in diff -u.
func hunks(script []op) []hunk {
	var out []hunk
	for s := 0; s < len(script); {
		for s < len(script) && script[s].kind == ' ' {
			s++
		}
		if s == len(script) {
			break
		}
		start := max(s-Context, 0)
		e := s // e: one past the last change of this hunk
		for {
			for e < len(script) && script[e].kind != ' ' {
				e++
			}
			next := e
			for next < len(script) && script[next].kind == ' ' {
				next++
			}
			if next == len(script) || next-e > 2*Context {
				break
			}
			e = next
		}
		end := min(e+Context, len(script))
		out = append(out, hunk{script[start:end]})
		s = end
	}
	return out
}

func (h hunk) write(sb *strings.Builder, a, b []string, skip int) {
	aStart, bStart := h.ops[0].i+skip, h.ops[0].j+skip
	aLen, bLen := 0, 0
	for _, o := range h.ops {
		if o.kind != '+' {
			aLen++
		}
		if o.kind != '-' {
			bLen++
		}
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", span(aStart, aLen), span(bStart, bLen))
	for _, o := range h.ops {
		line := ""
		if o.kind == '+' {
			line = b[o.j]
		} else {
			line = a[o.i]
		}
		sb.WriteByte(o.kind)
		if text, ok := strings.CutSuffix(line, "\n"); ok {
			sb.WriteString(text)
			sb.WriteByte('\n')
		} else {
			sb.WriteString(line)
			sb.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

// span formats a hunk range the way diff -u does: "start,len", the ",1"
// left out, and an empty range numbered by the line before it.
func span(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}
