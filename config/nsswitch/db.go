package nsswitch

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Database is one glibc NSS database line ("passwd: files sss").
type Database struct {
	// Name is the database ("passwd", "group").
	Name string
	// Line is the line that names it; 0 when no line does (glibc then
	// reads the local files).
	Line int
	// Services are the service words in order, action blocks
	// ("[NOTFOUND=return]") left out.
	Services []string
}

// FilesOnly reports whether the database is the local files alone: no
// line, or only "files". Any other service (sss, ldap, systemd, compat,
// winbind, …) can know accounts that /etc/passwd and /etc/group do not.
func (d Database) FilesOnly() bool {
	for _, s := range d.Services {
		if s != "files" {
			return false
		}
	}
	return true
}

// String is the line as "passwd: files sss", or "passwd: files (no line)".
func (d Database) String() string {
	if d.Line == 0 {
		return d.Name + ": files (no line)"
	}
	return d.Name + ": " + strings.Join(d.Services, " ")
}

// ParseDatabase finds database db in nsswitch.conf as glibc reads it: the
// first line "db:" (leading blanks allowed, the name in any case), "#"
// starting a comment. name is used in errors.
func ParseDatabase(r io.Reader, name, db string) (Database, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return Database{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxSize {
		return Database{}, fmt.Errorf("%s: larger than %d bytes, not an nsswitch.conf", name, MaxSize)
	}
	out := Database{Name: db}
	for no, line := range bytes.Split(data, []byte("\n")) {
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimLeft(line, " \t")
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || !strings.EqualFold(string(bytes.TrimRight(line[:colon], " \t")), db) {
			continue
		}
		out.Line = no + 1
		rest := string(line[colon+1:])
		for {
			// Action blocks ("[NOTFOUND=return]") name no service.
			i := strings.IndexByte(rest, '[')
			if i < 0 {
				break
			}
			j := strings.IndexByte(rest[i:], ']')
			if j < 0 {
				rest = rest[:i]
				break
			}
			rest = rest[:i] + " " + rest[i+j+1:]
		}
		out.Services = strings.Fields(rest)
		return out, nil
	}
	return out, nil
}
