package mounttable

import (
	"bytes"
	"strings"
	"testing"
)

const selfMountinfo = "/proc/self/mountinfo"

func TestParse(t *testing.T) {
	in := "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n" +
		`302 26 0:62 / /var/lib/kubelet/pods/2222/volumes/kubernetes.io~nfs/my\040data rw shared:92 - nfs4 nas:/export rw` + "\n"
	ms, err := Parse(strings.NewReader(in), selfMountinfo)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].FSType != "nfs4" || ms[1].Mountpoint != "/var/lib/kubelet/pods/2222/volumes/kubernetes.io~nfs/my data" {
		t.Fatalf("parsed %+v", ms[1])
	}
}

func TestParseMountinfoBadInput(t *testing.T) {
	good := "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	for _, tc := range []struct{ name, in, want string }{
		{"short line", good + good + "27 26 0:5 /\n", selfMountinfo + ":3: not a mountinfo line"},
		{"binary junk", good + "\x7fELF\x02\x01\x01\x00\xff\xfe\n", selfMountinfo + ":2: not a mountinfo line"},
		{"huge line", good + strings.Repeat("x", 10<<20) + "\n", selfMountinfo + ":2: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in), selfMountinfo)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("the error quotes %d bytes of input", len(err.Error()))
			}
			if !bytes.Equal([]byte(strings.ToValidUTF8(err.Error(), "")), []byte(err.Error())) {
				t.Errorf("the error is not valid UTF-8: %q", err)
			}
		})
	}
}

func TestLongLineInWords(t *testing.T) {
	_, err := Parse(strings.NewReader("26 1 254:0 / / rw - ext4 /dev/vda rw\n"+strings.Repeat("x", 2<<20)+"\n"), selfMountinfo)
	if err == nil || strings.Contains(err.Error(), "bufio") || !strings.Contains(err.Error(), selfMountinfo+":2: a line longer than 1 MiB") {
		t.Errorf("%v", err)
	}
}
