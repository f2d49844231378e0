package daemonjson

import (
	"fmt"
	"sort"
)

// What dockerd knows about its own flags, restated from its flag set
// (moby daemon/command and daemon/config) so that a daemon.json can be
// compared with a command line the way dockerd compares them.

// flagKeys are the flags whose daemon.json key is not the flag's own name:
// list-valued flags whose values implement opts.NamedOption in dockerd.
var flagKeys = map[string]string{
	"add-runtime":                      "runtimes",
	"allow-nondistributable-artifacts": "allow-nondistributable-artifacts",
	"authorization-plugin":             "authorization-plugins",
	"cdi-spec-dir":                     "cdi-spec-dirs",
	"cluster-store-opt":                "cluster-store-opts",
	"default-address-pool":             "default-address-pools",
	"default-network-opt":              "default-network-opts",
	"default-ulimit":                   "default-ulimits",
	"dns-opt":                          "dns-opts",
	"exec-opt":                         "exec-opts",
	"feature":                          "features",
	"host":                             "hosts",
	"host-gateway-ip":                  "host-gateway-ips",
	"insecure-registry":                "insecure-registries",
	"label":                            "labels",
	"log-opt":                          "log-opts",
	"node-generic-resource":            "node-generic-resources",
	"registry-mirror":                  "registry-mirrors",
	"storage-opt":                      "storage-opts",
}

// Shorthands maps dockerd's one-letter flags to their long names.
var shorthands = map[string]string{
	"b": "bridge",
	"D": "debug",
	"e": "exec-driver", // removed in 1.13; still in old units
	"G": "group",
	"g": "graph", // removed in 23.0; still in old units
	"H": "host",
	"h": "help",
	"l": "log-level",
	"p": "pidfile",
	"r": "restart",
	"s": "storage-driver",
	"v": "version",
}

// boolFlags never take the next word as their value (pflag booleans need
// --flag=false).
var boolFlags = map[string]bool{
	"allow-direct-routing": true, "cri-containerd": true, "debug": true,
	"disable-legacy-registry": true, "experimental": true, "help": true,
	"icc": true, "init": true, "ip-forward": true, "ip-forward-no-drop": true,
	"ip-masq": true, "ip6tables": true, "iptables": true, "ipv6": true,
	"live-restore": true, "no-new-privileges": true, "raw-logs": true,
	"restart": true, "rootless": true, "selinux-enabled": true, "tls": true,
	"tlsverify": true, "userland-proxy": true, "validate": true, "version": true,
	// RHEL 7's docker 1.13 (projectatomic) boolean flags.
	"signature-verification": true, "enable-secrets": true,
}

// notKeys are flags that have no daemon.json counterpart.
var notKeys = map[string]bool{"config-file": true, "help": true, "version": true, "validate": true}

// skipDuplicates are keys dockerd merges from flag and file instead of
// refusing them.
var skipDuplicates = map[string]bool{"runtimes": true}

// flatOptions are object-valued keys dockerd keeps as one directive; the
// members of any other object value count as top-level directives.
var flatOptions = map[string]bool{
	"builder": true, "cluster-store-opts": true, "default-network-opts": true,
	"default-ulimits": true, "features": true, "log-opts": true,
	"nri-opts": true, "runtimes": true,
}

// LongFlag returns the long name of a dockerd shorthand ("H" → "host"), or
// "" when it is not one.
func LongFlag(short string) string { return shorthands[short] }

// IsBoolFlag reports whether the dockerd flag (long name) is a boolean.
func IsBoolFlag(name string) bool { return boolFlags[name] }

// FlagKey returns the daemon.json key dockerd compares flag name (long
// form, no dashes) with, and false for flags with no key or that dockerd
// merges (--add-runtime) rather than refuses.
func FlagKey(name string) (string, bool) {
	if notKeys[name] {
		return "", false
	}
	key := name
	if k, ok := flagKeys[name]; ok {
		key = k
	}
	if skipDuplicates[key] {
		return "", false
	}
	return key, true
}

// RenamedFlags lists the flags whose key differs from their name, sorted,
// as "--flag → key", for documentation and messages.
func RenamedFlags() []string {
	var out []string
	for f, k := range flagKeys {
		if f != k {
			out = append(out, fmt.Sprintf("--%s → %s", f, k))
		}
	}
	sort.Strings(out)
	return out
}

// Directive is one configuration value dockerd reads from the file.
type Directive struct {
	Key string
	// Line and Col locate the key.
	Line, Col int
	Value     any
}

// Directives returns what dockerd counts as set in the file, flattened the
// way dockerd flattens it before comparing with flags: the members of an
// object value are directives of their own, except for the keys dockerd
// keeps whole (log-opts, features, runtimes, ...). Sorted by line.
func (f *File) Directives() []Directive {
	var out []Directive
	for _, m := range f.Members {
		v := f.Values[m.Key]
		if obj, ok := v.(map[string]any); ok && !flatOptions[m.Key] {
			for _, c := range m.Children {
				out = append(out, Directive{Key: c.Key, Line: c.Line, Col: c.Col, Value: obj[c.Key]})
			}
			continue
		}
		out = append(out, Directive{Key: m.Key, Line: m.Line, Col: m.Col, Value: v})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}
