// Package versions parses the version outputs of the programs usernsctl
// gates on, and compares them without go-version's pre-release trap: distro
// suffixes ("6.8.0-45-generic", "1.6.20~ds1", "20.10.24+dfsg1") are not
// pre-releases, so only the numeric core is compared.
package versions

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"
)

// Parsed is a program version: Raw as printed, Core as compared.
type Parsed struct {
	Raw  string
	Core *version.Version
}

func (p Parsed) String() string { return p.Raw }

// AtLeast compares the numeric core against min ("1.2", "6.3").
func (p Parsed) AtLeast(min string) bool {
	return AtLeast(p.Core, min)
}

// AtLeast reports v >= min on numeric cores. A nil v is never at least.
func AtLeast(v *version.Version, min string) bool {
	if v == nil {
		return false
	}
	m := version.Must(version.NewVersion(min))
	return v.Core().Compare(m.Core()) >= 0
}

// coreRe finds the leading numeric core of a version token: "1.6.20" in
// "1.6.20~ds1", "6.8.0" in "6.8.0-45-generic".
var coreRe = regexp.MustCompile(`^v?(\d+(?:\.\d+){0,3})`)

// Core parses the numeric core of a version token, ignoring any distro
// suffix.
func Core(token string) (*version.Version, error) {
	m := coreRe.FindStringSubmatch(strings.TrimSpace(token))
	if m == nil {
		return nil, fmt.Errorf("no version number in %q", token)
	}
	return version.NewVersion(m[1])
}

// Parse builds a Parsed from a version token.
func Parse(token string) (Parsed, error) {
	c, err := Core(token)
	if err != nil {
		return Parsed{}, err
	}
	return Parsed{Raw: strings.TrimPrefix(strings.TrimSpace(token), "v"), Core: c}, nil
}

// Kernel parses a kernel release such as "3.10.0-1160.el7.x86_64".
func Kernel(release string) (Parsed, error) { return Parse(release) }

// el7Re matches RHEL/CentOS 7 kernels: 3.10.0-1160.el7.x86_64,
// 3.10.0-514.26.2.el7.x86_64. The first number is the build that tells the
// minor release (693 = 7.4, 957 = 7.6).
var el7Re = regexp.MustCompile(`^3\.10\.0-(\d+)(?:\.\d+)*\.el7`)

// The RHEL/CentOS 7 kernel builds that began 7.4 and 7.6.
const (
	EL7Build74 = 693
	EL7Build76 = 957
)

// EL7Build is the build number of a RHEL/CentOS 7 kernel release (the 1160
// of 3.10.0-1160.el7.x86_64); el7 is false for any other kernel, and err
// is set for an el7 release whose build is not a number.
func EL7Build(release string) (build int, el7 bool, err error) {
	m := el7Re.FindStringSubmatch(release)
	if m == nil {
		return 0, false, nil
	}
	build, err = strconv.Atoi(m[1])
	return build, true, err
}

// Program names whose `--version` output this package understands.
const (
	Containerd = "containerd"
	Runc       = "runc"
	Crun       = "crun"
	Dockerd    = "dockerd"
	Kubelet    = "kubelet"
	Crio       = "crio"
)

// Programs lists them in report order.
var Programs = []string{Containerd, Runc, Crun, Dockerd, Kubelet, Crio}

// FromOutput parses the `PROGRAM --version` output of one of Programs.
//
//	containerd github.com/containerd/containerd/v2 v2.1.4 <rev>
//	containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3
//	runc version 1.2.6            (first line)
//	crun version 1.9              (first line)
//	Docker version 28.5.2, build 3ef3c07
//	Kubernetes v1.33.1
//	crio version 1.30.0           (older: "Version: 1.30.0" on a later line)
func FromOutput(program string, r io.Reader) (Parsed, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) == 0 {
		return Parsed{}, fmt.Errorf("%s --version printed nothing", program)
	}
	first := strings.Fields(lines[0])
	bad := func() (Parsed, error) {
		return Parsed{}, fmt.Errorf("%s --version: unrecognised output %q", program, lines[0])
	}
	switch program {
	case Containerd:
		// The version is the token after the module path.
		if len(first) < 3 || first[0] != "containerd" {
			return bad()
		}
		return Parse(first[2])
	case Runc, Crun:
		if len(first) < 3 || first[1] != "version" {
			return bad()
		}
		return Parse(first[2])
	case Dockerd:
		if len(first) < 3 || first[0] != "Docker" || first[1] != "version" {
			return bad()
		}
		return Parse(strings.TrimSuffix(first[2], ","))
	case Kubelet:
		if len(first) < 2 || first[0] != "Kubernetes" {
			return bad()
		}
		return Parse(first[1])
	case Crio:
		if len(first) >= 3 && first[0] == "crio" && first[1] == "version" {
			return Parse(first[2])
		}
		for _, l := range lines {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Version" {
				return Parse(strings.TrimSpace(v))
			}
		}
		return bad()
	}
	return Parsed{}, fmt.Errorf("versions: unknown program %q", program)
}
