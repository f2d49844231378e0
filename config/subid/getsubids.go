package subid

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// maxGetsubids bounds the output read: one short line per range.
const maxGetsubids = 1 << 20

// ParseGetsubids reads the output of `getsubids [-g] USER`: one line per
// range, "N: USER START COUNT" (e.g. "0: kubelet 65536 7208960"). name
// names the command in errors. The Ranges' Owner is the USER column.
func ParseGetsubids(r io.Reader, name string) ([]Range, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxGetsubids+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxGetsubids {
		return nil, fmt.Errorf("%s: output larger than %d bytes", name, maxGetsubids)
	}
	var out []Range
	for no := 1; len(data) > 0; no++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) != 4 || !bytes.HasSuffix(f[0], []byte(":")) {
			return nil, fmt.Errorf("%s: line %d: %q is not \"N: USER START COUNT\"", name, no, clip(line))
		}
		idx, err := strconv.Atoi(string(f[0][:len(f[0])-1]))
		if err != nil || idx != len(out) {
			return nil, fmt.Errorf("%s: line %d: index %q, want %d", name, no, clip(f[0]), len(out))
		}
		s, err1 := strconv.ParseUint(string(f[2]), 10, 64)
		c, err2 := strconv.ParseUint(string(f[3]), 10, 64)
		if err1 != nil || err2 != nil || s > MaxID || c == 0 || c > Space || s+c > Space {
			return nil, fmt.Errorf("%s: line %d: %q is not a valid range", name, no, clip(line))
		}
		out = append(out, NewRange(string(f[1]), s, c))
	}
	return out, nil
}

func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
