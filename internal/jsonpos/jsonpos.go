// Package jsonpos turns an encoding/json decoding error into the line and
// column of the offending byte, so that every JSON file usernsctl reads
// (commands.json, probes.json, `runc features`) is reported as
// file:line:column. daemon.json has its own scanner (config/daemonjson),
// which also catches what encoding/json lets through.
package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Offset is where err happened in data: the error's own offset when it
// has one, the end for a truncated document, else fallback (the decoder's
// InputOffset).
func Offset(data []byte, err error, fallback int64) int64 {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return syn.Offset
	case errors.As(err, &typ):
		return typ.Offset
	case errors.Is(err, io.ErrUnexpectedEOF):
		return int64(len(data))
	}
	return fallback
}

// LineCol is the 1-based line and byte column of offset off in data.
// encoding/json offsets count the bytes read up to and including the bad
// one, so the column is that byte's.
func LineCol(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	head := data[:off]
	line = 1 + bytes.Count(head, []byte("\n"))
	col = int(off) - (bytes.LastIndexByte(head, '\n') + 1)
	return line, max(col, 1)
}

// Trailing reports the offset of anything but white space after the first
// document (at offset end), or -1: a file must hold exactly one value.
func Trailing(data []byte, end int64) int64 {
	rest := data[end:]
	trimmed := bytes.TrimLeft(rest, " \t\r\n")
	if len(trimmed) == 0 {
		return -1
	}
	return end + int64(len(rest)-len(trimmed))
}
