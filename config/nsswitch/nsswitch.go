// Package nsswitch reads the `subid:` database of /etc/nsswitch.conf: where
// shadow's libsubid (getsubids, newuidmap, the kubelet through getsubids)
// looks up subordinate ids.
//
// It mirrors libsubid's own reading rather than glibc's: the first line
// that starts with "subid:" (any case, at column 1) and has a service
// names the one source; "files" or no such line means /etc/subuid and
// /etc/subgid; any other word X means the NSS module libsubid_X.so. Only one
// source is used, unlike other NSS databases.
package nsswitch

import (
	"bytes"
	"fmt"
	"io"
)

// MaxSize bounds the input: nsswitch.conf is a few hundred bytes.
const MaxSize = 1 << 20

// maxModule is libsubid's limit on a module name; longer ones fall back
// to files.
const maxModule = 50

// Subid is the `subid:` source.
type Subid struct {
	// Line is the line that set it; 0 when no line did (files).
	Line int
	// Service is the first service word as written ("files", "sss", ...);
	// "" when no line set it.
	Service string
	// Module is the NSS module libsubid loads ("sss" → libsubid_sss.so);
	// "" when the files are the source.
	Module string
	// Note explains a line that libsubid reads as files although it names
	// something else (a module name too long, no newline after the word).
	Note string
}

// Files reports whether /etc/subuid and /etc/subgid are the source.
func (s Subid) Files() bool { return s.Module == "" }

// Library is the shared object libsubid loads, "" for files.
func (s Subid) Library() string {
	if s.Module == "" {
		return ""
	}
	return "libsubid_" + s.Module + ".so"
}

// ParseSubid finds the `subid:` source in nsswitch.conf. name is used in
// errors.
func ParseSubid(r io.Reader, name string) (Subid, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return Subid{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxSize {
		return Subid{}, fmt.Errorf("%s: larger than %d bytes, not an nsswitch.conf", name, MaxSize)
	}
	for no := 1; len(data) > 0; no++ {
		line, nl := data, false
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data, nl = data[:i], data[i+1:], true
		} else {
			data = nil
		}
		// libsubid skips lines shorter than 8 bytes counting the newline.
		if len(line) < 6 || len(line)+btoi(nl) < 8 || !bytes.EqualFold(line[:6], []byte("subid:")) {
			continue
		}
		rest := bytes.TrimLeft(line[6:], " \t")
		if len(rest) == 0 {
			continue // "subid:" with nothing after it: libsubid keeps looking
		}
		word := rest
		end := bytes.IndexAny(rest, " \t")
		if end >= 0 {
			word = rest[:end]
		}
		s := Subid{Line: no, Service: string(word)}
		switch {
		case end < 0 && !nl:
			s.Note = "no blank or newline after the service on the last line: libsubid then uses files"
		case s.Service == "files":
		case bytes.IndexFunc(word, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0:
			s.Note = fmt.Sprintf("service %q contains a control character (a DOS line ending?): libsubid cannot load it and uses files", word)
		case len(word) > maxModule:
			s.Note = fmt.Sprintf("module name longer than %d characters: libsubid then uses files", maxModule)
		default:
			s.Module = s.Service
		}
		return s, nil
	}
	return Subid{}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
