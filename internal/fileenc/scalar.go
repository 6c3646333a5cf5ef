package fileenc

import (
	"encoding/base64"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// YAML short tags.
const (
	tagStr       = "!!str"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagBool      = "!!bool"
	tagNull      = "!!null"
	tagTimestamp = "!!timestamp"
	tagBinary    = "!!binary"
	tagMap       = "!!map"
	tagSeq       = "!!seq"
)

// scalarValue converts a scalar node to the Go value sops sees for it:
// string, int64 (uint64 beyond int64), float64, bool, time.Time or nil.
// Unknown tags are strings, as in sops.
func scalarValue(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case tagStr:
		return n.Value, nil
	case tagNull:
		return nil, nil
	case tagBool:
		switch n.Value {
		case "true", "True", "TRUE":
			return true, nil
		case "false", "False", "FALSE":
			return false, nil
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, &ParseError{Line: n.Line, Msg: "invalid boolean"}
		}
		return b, nil
	case tagInt:
		return parseYAMLInt(n)
	case tagFloat:
		return parseYAMLFloat(n)
	case tagTimestamp:
		for _, layout := range timestampLayouts {
			if t, err := time.Parse(layout, n.Value); err == nil {
				return t, nil
			}
		}
		return nil, &ParseError{Line: n.Line, Msg: "invalid timestamp"}
	case tagBinary:
		b, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, n.Value))
		if err != nil {
			return nil, &ParseError{Line: n.Line, Msg: "invalid !!binary value"}
		}
		return string(b), nil
	}
	return n.Value, nil
}

var timestampLayouts = []string{
	"2006-1-2T15:4:5.999999999Z07:00",
	"2006-1-2t15:4:5.999999999Z07:00",
	"2006-1-2 15:4:5.999999999",
	"2006-1-2",
}

func dropSpace(r rune) rune {
	switch r {
	case ' ', '\n', '\r', '\t':
		return -1
	}
	return r
}

func parseYAMLInt(n *yaml.Node) (any, error) {
	s := n.Value
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	// Other YAML forms: 0x, 0o, 0b, a leading-zero octal, underscores, a
	// sign; base 0 takes them all ("0o17", "017", "0x1F", "1_000").
	if i, err := strconv.ParseInt(s, 0, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 0, 64); err == nil {
		return u, nil
	}
	// Too big for 64 bits: sops' YAML library gives a float.
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
		return f, nil
	}
	return nil, &ParseError{Line: n.Line, Msg: "invalid integer"}
}

func parseYAMLFloat(n *yaml.Node) (any, error) {
	switch strings.ToLower(strings.TrimPrefix(n.Value, "+")) {
	case ".inf":
		return math.Inf(1), nil
	case "-.inf":
		return math.Inf(-1), nil
	case ".nan":
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil {
		return nil, &ParseError{Line: n.Line, Msg: "invalid float"}
	}
	return f, nil
}

// setScalar makes n a plain scalar holding v, tagged as YAML would tag
// the Go value.
func setScalar(n *yaml.Node, v any) {
	n.Kind = yaml.ScalarNode
	n.Style = 0
	n.Content = nil
	n.Alias = nil
	switch x := v.(type) {
	case string:
		n.Tag, n.Value = tagStr, x
		n.Style = strStyle(x)
	case int64:
		n.Tag, n.Value = tagInt, strconv.FormatInt(x, 10)
	case uint64:
		n.Tag, n.Value = tagInt, strconv.FormatUint(x, 10)
	case float64:
		n.Tag, n.Value = tagFloat, yamlFloat(x)
	case bool:
		n.Tag, n.Value = tagBool, strconv.FormatBool(x)
	case time.Time:
		n.Tag, n.Value = tagTimestamp, x.Format(time.RFC3339Nano)
	case []byte:
		if utf8.Valid(x) {
			n.Tag, n.Value = tagStr, string(x)
		} else {
			n.Tag, n.Value = tagBinary, base64.StdEncoding.EncodeToString(x)
		}
	case nil:
		n.Tag, n.Value = tagNull, "null"
	}
}

// yamlFloat formats f as the YAML encoder does.
func yamlFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	case math.IsNaN(f):
		return ".nan"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func newScalar(v any) *yaml.Node {
	n := &yaml.Node{}
	setScalar(n, v)
	return n
}

func newStr(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: s, Style: strStyle(s)}
}

// old11Bools are the YAML 1.1 booleans: plain, they are strings to the
// YAML 1.2 library but booleans to YAML 1.1 readers (older Kubernetes
// tooling), so they are written quoted, as sops does.
var old11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "n": true, "N": true, "no": true, "No": true, "NO": true,
	"on": true, "On": true, "ON": true, "off": true, "Off": true, "OFF": true,
}

var base60Float = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`)

func strStyle(s string) yaml.Style {
	if old11Bools[s] || (len(s) < 30 && base60Float.MatchString(s)) {
		return yaml.DoubleQuotedStyle
	}
	return 0
}

func newMap() *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: tagMap}
}

func newSeq() *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: tagSeq}
}
