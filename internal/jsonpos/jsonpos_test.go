package jsonpos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func TestPositions(t *testing.T) {
	for i, c := range []struct {
		doc       string
		line, col int
	}{
		{"{\n  \"a\": 1,\n}\n", 3, 1}, // trailing comma: the brace
		{"{\n  \"a\": 1\n", 3, 1},     // truncated
		{"{\"a\": \"x\"}", 1, 9},      // type error: at the value's last byte
		{"{\n  \"a\" 1\n}", 2, 7},     // missing colon
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var v map[string]int
			dec := json.NewDecoder(bytes.NewReader([]byte(c.doc)))
			err := dec.Decode(&v)
			if err == nil {
				t.Fatalf("%q decoded", c.doc)
			}
			line, col := LineCol([]byte(c.doc), Offset([]byte(c.doc), err, dec.InputOffset()))
			if line != c.line || col != c.col {
				t.Errorf("%q: %v at %d:%d, want %d:%d", c.doc, err, line, col, c.line, c.col)
			}
		})
	}
	if got := Trailing([]byte("{} \n {}"), 2); got != 5 {
		t.Errorf("trailing at %d, want 5", got)
	}
	if got := Trailing([]byte("{} \n "), 2); got != -1 {
		t.Errorf("white space only: %d", got)
	}
}
