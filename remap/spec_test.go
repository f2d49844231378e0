package remap

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/user"
)

func TestParseSpecForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
	}{
		{"default", Spec{Raw: "default", Default: true, User: "dockremap", UID: -1, GID: -1}},
		{"dockremap", Spec{Raw: "dockremap", User: "dockremap", UID: -1, GID: -1}},
		{"mapuser:mapgroup", Spec{Raw: "mapuser:mapgroup", User: "mapuser", Group: "mapgroup", UID: -1, GID: -1}},
		{"1500", Spec{Raw: "1500", UID: 1500, GID: -1}},
		{"1500:1600", Spec{Raw: "1500:1600", UID: 1500, GID: 1600}},
		{"mapuser:1600", Spec{Raw: "mapuser:1600", User: "mapuser", UID: -1, GID: 1600}},
		{"1500:mapgroup", Spec{Raw: "1500:mapgroup", UID: 1500, Group: "mapgroup", GID: -1}},
		// dockerd tests the user part for "default": "default:docker" is dockremap with group docker (moby parseRemappedRoot).
		{"default:docker", Spec{Raw: "default:docker", Default: true, User: "dockremap", Group: "docker", UID: -1, GID: -1}},
		// strconv.ParseInt reads a sign and leading zeros.
		{"+1500", Spec{Raw: "+1500", UID: 1500, GID: -1}},
		{"01500:+1600", Spec{Raw: "01500:+1600", UID: 1500, GID: 1600}},
		// root is resolved, not refused, here (see Resolve).
		{"root", Spec{Raw: "root", User: "root", UID: -1, GID: -1}},
		{"0:0", Spec{Raw: "0:0", UID: 0, GID: 0}},
		{"user.name-1", Spec{Raw: "user.name-1", User: "user.name-1", UID: -1, GID: -1}},
		{"2147483647", Spec{Raw: "2147483647", UID: 2147483647, GID: -1}},
		// A name that only starts with digits is a name, as in dockerd.
		{"1500x", Spec{Raw: "1500x", User: "1500x", UID: -1, GID: -1}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSpec(tc.in)
			if err != nil {
				t.Errorf("ParseSpec(%q): %v", tc.in, err)
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseSpec(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseSpecRefuses(t *testing.T) {
	for i, tc := range []struct {
		in, want string
		root     bool
	}{
		{"", "is empty", false},
		{"a:b:c", `has 3 ":"-separated parts`, false},
		{"a::", `has 3 ":"-separated parts`, false},
		{"mapuser:", "the group part is empty", false},
		{":mapgroup", "the user part is empty", false},
		{":", "the user part is empty", false},
		{"-1", "not a valid ID: dockerd reads it as uid or gid -1", false},
		{"+-1500", "not a valid ID", false},
		{"1500:-5", "group \"-5\" is not a valid ID", false},
		{"2147483648", "out of range", false},
		{"99999999999999999999999", "out of range", false},
		{"dock remap", "contains ' '", false},
		{"dockremap\n", "contains '\\n'", false},
		{"user:gr\x00oup", "contains '\\x00'", false},
		{"a/b", "contains '/'", false},
		{"\xff\xfe", "contains '�'", false},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, err := ParseSpec(tc.in)
			if err == nil {
				t.Errorf("ParseSpec(%q): no error, want %q", tc.in, tc.want)
				return
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseSpec(%q) = %v, want it to say %q", tc.in, err, tc.want)
			}
			if errors.Is(err, ErrRoot) != tc.root {
				t.Errorf("ParseSpec(%q): errors.Is(ErrRoot) = %v, want %v", tc.in, !tc.root, tc.root)
			}
		})
	}
}

func accounts(t testing.TB) ([]user.User, []user.Group) {
	t.Helper()
	users, err := user.ParsePasswd(strings.NewReader(`root:x:0:0:root:/root:/bin/bash
toor:x:0:0:alias of root:/root:/bin/sh
dockremap:x:999:999::/home/dockremap:/usr/sbin/nologin
mapuser:x:1500:1500::/nonexistent:/usr/sbin/nologin
lonely:x:1700:1700::/nonexistent:/usr/sbin/nologin
`))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := user.ParseGroup(strings.NewReader(`root:x:0:
docker:x:998:
dockremap:x:999:
mapuser:x:1500:
mapgroup:x:1600:
`))
	if err != nil {
		t.Fatal(err)
	}
	return users, groups
}

func TestResolve(t *testing.T) {
	users, groups := accounts(t)
	for _, tc := range []struct {
		spec string
		want Account
		keys []string
	}{
		{"default", Account{User: "dockremap", UID: 999, Exists: true, Group: "dockremap", GID: 999, GroupExists: true}, []string{"dockremap", "999"}},
		{"mapuser", Account{User: "mapuser", UID: 1500, Exists: true, Group: "mapuser", GID: 1500, GroupExists: true}, []string{"mapuser", "1500"}},
		// Field case 6: the group names the gid map only; subordinate IDs
		// are still looked up by the user.
		{"mapuser:mapgroup", Account{User: "mapuser", UID: 1500, Exists: true, Group: "mapgroup", GID: 1600, GroupExists: true}, []string{"mapuser", "1500"}},
		{"1500", Account{User: "mapuser", UID: 1500, Exists: true, Group: "mapuser", GID: 1500, GroupExists: true}, []string{"mapuser", "1500"}},
		{"1500:998", Account{User: "mapuser", UID: 1500, Exists: true, Group: "docker", GID: 998, GroupExists: true}, []string{"mapuser", "1500"}},
		// lonely has no group of its own name: dockerd fails at start.
		{"lonely", Account{User: "lonely", UID: 1700, Exists: true, Group: "lonely", GID: -1}, []string{"lonely", "1700"}},
		{"1700", Account{User: "lonely", UID: 1700, Exists: true, GID: -1}, []string{"lonely", "1700"}},
		{"ghost", Account{User: "ghost", UID: -1, Group: "ghost", GID: -1}, []string{"ghost"}},
		{"4242", Account{UID: 4242, GID: -1}, []string{"4242"}},
		{"mapuser:nogroup", Account{User: "mapuser", UID: 1500, Exists: true, Group: "nogroup", GID: -1}, []string{"mapuser", "1500"}},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			sp, err := ParseSpec(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sp.Resolve(users, groups)
			if err != nil {
				t.Errorf("Resolve(%q): %v", tc.spec, err)
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Resolve(%q) = %+v, want %+v", tc.spec, got, tc.want)
			}
			if k := got.SubIDKeys(); !reflect.DeepEqual(k, tc.keys) {
				t.Errorf("Resolve(%q).SubIDKeys() = %q, want %q", tc.spec, k, tc.keys)
			}
		})
	}
}

func TestResolveDefaultWithoutDockremap(t *testing.T) {
	users, groups := accounts(t)
	var keep []user.User
	for _, u := range users {
		if u.Name != DefaultUser {
			keep = append(keep, u)
		}
	}
	sp, _ := ParseSpec("default")
	a, err := sp.Resolve(keep, groups)
	if err != nil {
		t.Fatal(err)
	}
	want := Account{User: "dockremap", UID: -1, Group: "dockremap", GID: -1, Created: true}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("Resolve(default) without dockremap = %+v, want %+v", a, want)
	}
	// The explicit name is not created by dockerd: it must exist.
	sp, _ = ParseSpec("dockremap")
	if a, _ := sp.Resolve(keep, groups); a.Created || a.Exists {
		t.Fatalf("Resolve(dockremap) without the account = %+v, want missing and not created", a)
	}
}

func TestResolveRoot(t *testing.T) {
	users, groups := accounts(t)
	// dockerd turns user namespaces off for the user NAMED root only.
	for _, spec := range []string{"root", "0", "0:0", "root:docker"} {
		sp, err := ParseSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		a, err := sp.Resolve(users, groups)
		if !errors.Is(err, ErrRoot) || a.User != "root" || !a.Exists || !a.GroupExists {
			t.Errorf("Resolve(%q) = %+v, %v; want root's account and ErrRoot", spec, a, err)
		}
	}
	// toor is uid 0 under another name: remapped onto its own ranges.
	sp, _ := ParseSpec("toor")
	a, err := sp.Resolve(users, groups)
	if err != nil || a.User != "toor" || a.UID != 0 {
		t.Fatalf("Resolve(toor) = %+v, %v; want toor, no error", a, err)
	}
	if k := a.SubIDKeys(); !reflect.DeepEqual(k, []string{"toor", "0"}) {
		t.Errorf("toor's keys = %q", k)
	}
	// "default:docker" with dockremap present: dockremap, group docker.
	sp, _ = ParseSpec("default:docker")
	if a, err := sp.Resolve(users, groups); err != nil || a.User != "dockremap" || a.Group != "docker" || !a.GroupExists {
		t.Errorf("Resolve(default:docker) = %+v, %v", a, err)
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"default", "a:b", "1:2", "a:b:c", "", ":", "0", "\xff"} {
		f.Add(s)
	}
	users, groups := accounts(f)
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpec(s)
		if err != nil {
			return
		}
		if strings.Count(s, ":") > 1 || sp.UID < -1 || sp.GID < -1 {
			t.Fatalf("ParseSpec(%q) accepted %+v", s, sp)
		}
		_, _ = sp.Resolve(users, groups)
	})
}
