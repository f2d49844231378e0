// Package kubelet reads the kubelet's config file (KubeletConfiguration,
// YAML or JSON) as far as user namespaces care: maxPods,
// userNamespaces.idsPerPod, featureGates and containerRuntimeEndpoint,
// each with the line it is set on, plus the `--feature-gates` flag syntax.
package kubelet

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/usernsctl/usernsctl/internal/errs"
)

// Defaults of KubeletConfiguration.
const (
	DefaultMaxPods   = 110
	DefaultIDsPerPod = 65536
	// DefaultPath is where kubeadm writes the kubelet config.
	DefaultPath = "/var/lib/kubelet/config.yaml"
	// DefaultRootDir is --root-dir's default (KubeletFlags.RootDirectory).
	DefaultRootDir = "/var/lib/kubelet"
	// DefaultRuntimeEndpoint is containerRuntimeEndpoint's default
	// (v1beta1 SetDefaults_KubeletConfiguration, 1.27+).
	DefaultRuntimeEndpoint = "unix:///run/containerd/containerd.sock"
	// Kind and Group identify a KubeletConfiguration document.
	Kind  = "KubeletConfiguration"
	Group = "kubelet.config.k8s.io"
)

// MaxSize bounds a config file: kubelet configs are a few KiB.
const MaxSize = 4 << 20

// Config is what the file says. Line numbers are 0 for unset fields.
type Config struct {
	Name       string
	APIVersion string

	MaxPods     int // DefaultMaxPods when unset
	MaxPodsLine int

	IDsPerPod     int64 // DefaultIDsPerPod when unset
	IDsPerPodLine int

	FeatureGates     map[string]bool
	FeatureGateLines map[string]int

	// ContainerRuntimeEndpoint is the CRI socket (v1beta1 since 1.27); ""
	// when unset.
	ContainerRuntimeEndpoint     string
	ContainerRuntimeEndpointLine int

	// Notes are things the kubelet accepts with a warning (a key given
	// twice: the kubelet falls back to lenient decoding and the last one
	// wins).
	Notes []string
}

// Parse reads a KubeletConfiguration. name is the path used in messages.
func Parse(r io.Reader, name string) (*Config, error) {
	return parse(r, name, true)
}

// ParseDropIn reads a --config-dir drop-in. Before Kubernetes 1.32 the
// kubelet decodes a drop-in as unstructured, which needs kind only, so
// apiVersion is required only when needAPIVersion says so.
func ParseDropIn(r io.Reader, name string, needAPIVersion bool) (*Config, error) {
	return parse(r, name, needAPIVersion)
}

func parse(r io.Reader, name string, needAPIVersion bool) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxSize {
		return nil, &errs.Input{Pos: errs.Pos{File: name}, Msg: fmt.Sprintf("larger than %d MiB: not a kubelet config", MaxSize>>20)}
	}
	if err := scanBytes(data, name); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err, name)
	}
	c := &Config{Name: name, MaxPods: DefaultMaxPods, IDsPerPod: DefaultIDsPerPod}
	if len(doc.Content) == 0 {
		return nil, &errs.Input{Pos: errs.Pos{File: name}, Msg: "empty: no " + Kind + " (the kubelet refuses it: Object 'Kind' is missing)"}
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, at(name, root, "want a "+Kind+" object, not a "+kindName(root))
	}
	fields := c.pairs(root)
	kind, kindNode := fields.str("kind")
	api, apiNode := fields.str("apiVersion")
	switch {
	case kindNode == nil:
		return nil, &errs.Input{Pos: errs.Pos{File: name, Line: 1}, Msg: "no `kind: " + Kind + "` (the kubelet refuses it: Object 'Kind' is missing)"}
	case kind != Kind:
		return nil, at(name, kindNode, fmt.Sprintf("kind %q: want %s", kind, Kind))
	case apiNode == nil && !needAPIVersion:
	case apiNode == nil:
		return nil, &errs.Input{Pos: errs.Pos{File: name, Line: 1}, Msg: "no apiVersion (want " + Group + "/v1beta1)"}
	case !strings.HasPrefix(api, Group+"/"):
		return nil, at(name, apiNode, fmt.Sprintf("apiVersion %q: want %s/v1beta1", api, Group))
	}
	c.APIVersion = api

	if n := fields["maxPods"]; n != nil {
		v, err := integer(n)
		if err != nil || v < 0 || v > math.MaxInt32 {
			return nil, at(name, n, fmt.Sprintf("maxPods %s: want a whole number of pods", show(n)))
		}
		c.MaxPods, c.MaxPodsLine = int(v), n.Line
	}
	if n := fields["containerRuntimeEndpoint"]; n != nil && !isNull(n) {
		if n.Kind != yaml.ScalarNode {
			return nil, at(name, n, "containerRuntimeEndpoint: want a socket such as unix:///run/containerd/containerd.sock, not a "+kindName(n))
		}
		c.ContainerRuntimeEndpoint, c.ContainerRuntimeEndpointLine = n.Value, n.Line
	}
	if un := fields["userNamespaces"]; un != nil {
		if un.Kind != yaml.MappingNode {
			if !isNull(un) {
				return nil, at(name, un, "userNamespaces: want an object such as {idsPerPod: 65536}, not a "+kindName(un))
			}
		} else if n := c.pairs(un)["idsPerPod"]; n != nil && !isNull(n) {
			v, err := integer(n)
			if err != nil {
				return nil, at(name, n, fmt.Sprintf("userNamespaces.idsPerPod %s: want a whole number", show(n)))
			}
			c.IDsPerPod, c.IDsPerPodLine = v, n.Line
		}
	}
	if fg := fields["featureGates"]; fg != nil && !isNull(fg) {
		if fg.Kind != yaml.MappingNode {
			return nil, at(name, fg, "featureGates: want a map of gate: true|false, not a "+kindName(fg))
		}
		c.FeatureGates, c.FeatureGateLines = map[string]bool{}, map[string]int{}
		for gate, n := range c.pairs(fg) {
			b, ok := boolean(n)
			if !ok {
				return nil, at(name, n, fmt.Sprintf("featureGates.%s %s: want true or false", gate, show(n)))
			}
			c.FeatureGates[gate], c.FeatureGateLines[gate] = b, n.Line
		}
	}
	sort.Strings(c.Notes)
	return c, nil
}

type fields map[string]*yaml.Node

func (f fields) str(k string) (string, *yaml.Node) {
	n := f[k]
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", n
	}
	return n.Value, n
}

// pairs returns a mapping's values by key. A repeated key keeps the last
// value, as the kubelet's lenient decoding does, and is noted.
func (c *Config) pairs(m *yaml.Node) fields {
	out := fields{}
	first := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), deref(m.Content[i+1])
		if line, dup := first[k.Value]; dup {
			c.Notes = append(c.Notes, fmt.Sprintf("%s: %q is also set on line %d; the kubelet uses the last one", errs.At(c.Name, k.Line), k.Value, line))
		} else {
			first[k.Value] = k.Line
		}
		out[k.Value] = v
	}
	return out
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// integer accepts what the kubelet's YAML-to-JSON step turns into a JSON
// number: a plain (unquoted) integer scalar.
func integer(n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, fmt.Errorf("not an integer")
	}
	return strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
}

// boolean accepts the YAML 1.1 booleans the kubelet's YAML library reads
// (yes/no/on/off too), unquoted only: a quoted "true" is a string, which
// the kubelet refuses for a feature gate.
func boolean(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return false, false
	}
	switch n.Value {
	case "true", "True", "TRUE", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON":
		return true, true
	case "false", "False", "FALSE", "no", "No", "NO", "n", "N", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}

func show(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			return strconv.Quote(n.Value) + " (quoted: a string)"
		}
		return strconv.Quote(n.Value)
	}
	return "(a " + kindName(n) + ")"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return "scalar"
	}
	return "document"
}

func at(name string, n *yaml.Node, msg string) error {
	return &errs.Input{Pos: errs.Pos{File: name, Line: n.Line, Column: n.Column}, Msg: msg}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns yaml's "yaml: line N: msg" into a positioned error. The
// library leaves the line out when it is the first.
func yamlError(err error, name string) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &errs.Input{Pos: errs.Pos{File: name, Line: line}, Msg: m[2]}
	}
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	return &errs.Input{Pos: errs.Pos{File: name, Line: 1}, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// scanBytes finds what the YAML library rejects without a position:
// invalid UTF-8 and control characters (binary files).
func scanBytes(data []byte, name string) error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &errs.Input{Pos: errs.Pos{File: name, Line: line, Column: col}, Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x): not a text file", data[i])}
		case r == '\n':
			line, col = line+1, 0
		case r < 0x20 && r != '\t' && r != '\r' || r == 0x7f:
			return &errs.Input{Pos: errs.Pos{File: name, Line: line, Column: col}, Msg: fmt.Sprintf("control character %U: not a text file", r)}
		}
		i += size
		col++
	}
	return nil
}

// ParseFeatureGates parses a `--feature-gates` value: "A=true,B=false".
func ParseFeatureGates(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--feature-gates %q: want Gate=true|false, got %q", s, part)
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("--feature-gates %q: %s=%q is not true or false", s, k, v)
		}
		out[k] = b
	}
	return out, nil
}
