package fileenc

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Conflict markers written into a value when both sides changed it. The
// value stays a string, so the merged file can be encrypted like any
// other, and `coffer file edit` shows the markers to resolve.
const (
	MarkerOurs   = "<<<<<<< ours"
	MarkerSep    = "======="
	MarkerTheirs = ">>>>>>> theirs"
	deletedSide  = "(deleted)"
)

// Merge3 merges the plaintext trees of ours and theirs against their
// common ancestor base (nil when there is none): mappings key by key,
// other values whole. A value changed differently on both sides becomes a
// conflict: a string holding both versions between conflict markers. It
// returns the merged document (built on ours) and the conflicting paths.
func Merge3(base, ours, theirs *Document) (*Document, []string) {
	out := ours.Clone()
	var conflicts []string
	if len(ours.Branches) != len(theirs.Branches) || (base != nil && len(base.Branches) != len(ours.Branches)) {
		// Documents added or removed: take ours, flag the whole file.
		return out, []string{"(the number of YAML documents differs)"}
	}
	for i := range out.Branches {
		var b *yaml.Node
		if base != nil {
			b = base.Branches[i]
		}
		merged := mergeNode(b, ours.Branches[i], theirs.Branches[i], "", &conflicts)
		out.Branches[i] = cloneNode(merged)
	}
	return out, conflicts
}

func mergeNode(b, o, t *yaml.Node, path string, conflicts *[]string) *yaml.Node {
	switch {
	case nodesEqual(o, t):
		return o
	case b != nil && nodesEqual(b, o):
		return t
	case b != nil && nodesEqual(b, t):
		return o
	case o != nil && t != nil && o.Kind == yaml.MappingNode && t.Kind == yaml.MappingNode && (b == nil || b.Kind == yaml.MappingNode):
		return mergeMaps(b, o, t, path, conflicts)
	}
	*conflicts = append(*conflicts, displayPath(path))
	return conflictNode(o, t)
}

func mergeMaps(b, o, t *yaml.Node, path string, conflicts *[]string) *yaml.Node {
	m := *o
	m.Content = nil
	get := func(n *yaml.Node, k string) (*yaml.Node, *yaml.Node) {
		if n == nil {
			return nil, nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				return n.Content[i], n.Content[i+1]
			}
		}
		return nil, nil
	}
	var keys []string
	seen := map[string]bool{}
	for _, n := range []*yaml.Node{o, t} {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		_, bv := get(b, k)
		ok, ov := get(o, k)
		tk, tv := get(t, k)
		p := path + `["` + k + `"]`
		var v *yaml.Node
		kn := ok
		if kn == nil {
			kn = tk
		}
		switch {
		case ov == nil && tv == nil:
			continue
		case ov == nil:
			if bv != nil && nodesEqual(bv, tv) {
				continue // deleted in ours
			}
			if bv != nil {
				*conflicts = append(*conflicts, displayPath(p))
				v = conflictNode(nil, tv)
			} else {
				v = tv // added in theirs
			}
		case tv == nil:
			if bv != nil && nodesEqual(bv, ov) {
				continue // deleted in theirs
			}
			if bv != nil {
				*conflicts = append(*conflicts, displayPath(p))
				v = conflictNode(ov, nil)
			} else {
				v = ov
			}
		default:
			v = mergeNode(bv, ov, tv, p, conflicts)
		}
		m.Content = append(m.Content, kn, v)
	}
	return &m
}

func displayPath(p string) string {
	if p == "" {
		return "(document root)"
	}
	return p
}

// conflictNode renders both sides of a conflict into one string value.
func conflictNode(o, t *yaml.Node) *yaml.Node {
	var b strings.Builder
	b.WriteString(MarkerOurs + "\n")
	b.WriteString(renderSide(o))
	b.WriteString(MarkerSep + "\n")
	b.WriteString(renderSide(t))
	b.WriteString(MarkerTheirs + "\n")
	n := newStr(b.String())
	if o != nil {
		n.HeadComment, n.LineComment, n.FootComment = o.HeadComment, o.LineComment, o.FootComment
	}
	return n
}

func renderSide(n *yaml.Node) string {
	if n == nil {
		return deletedSide + "\n"
	}
	var s string
	if n.Kind == yaml.ScalarNode {
		s = n.Value
	} else {
		c := cloneNode(n)
		stripComments(c)
		out, err := EmitValue(c, FormatYAML)
		if err != nil {
			s = err.Error()
		} else {
			s = string(out)
		}
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

func stripComments(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		stripComments(c)
	}
}

// nodesEqual compares two subtrees by value: kinds, tags, scalar values,
// keys and order; comments and styles are ignored.
func nodesEqual(a, b *yaml.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return false
	}
	if a.Kind == yaml.ScalarNode {
		return a.ShortTag() == b.ShortTag() && a.Value == b.Value
	}
	for i := range a.Content {
		if !nodesEqual(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

// ConflictPaths lists the values of a plaintext document that still hold
// conflict markers.
func (d *Document) ConflictPaths() []string {
	var out []string
	var walk func(n *yaml.Node, p string)
	walk = func(n *yaml.Node, p string) {
		switch n.Kind {
		case yaml.ScalarNode:
			if strings.HasPrefix(n.Value, MarkerOurs+"\n") && strings.Contains(n.Value, "\n"+MarkerSep+"\n") {
				out = append(out, displayPath(p))
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], p+`["`+n.Content[i].Value+`"]`)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, p+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	for _, b := range d.Branches {
		walk(b, "")
	}
	return out
}

// SameKeys reports whether two metadata blocks name the same master keys
// in the same groups with the same threshold.
func SameKeys(a, b *Metadata) bool {
	if a == nil || b == nil || len(a.KeyGroups) != len(b.KeyGroups) || a.ShamirThreshold != b.ShamirThreshold {
		return false
	}
	for i := range a.KeyGroups {
		ga, gb := a.KeyGroups[i], b.KeyGroups[i]
		if len(ga.Age) != len(gb.Age) || len(ga.Vault) != len(gb.Vault) || len(ga.Other) != len(gb.Other) {
			return false
		}
		for j := range ga.Age {
			if ga.Age[j].Recipient != gb.Age[j].Recipient {
				return false
			}
		}
		for j := range ga.Vault {
			x, y := ga.Vault[j], gb.Vault[j]
			if x.VaultAddress != y.VaultAddress || x.EnginePath != y.EnginePath || x.KeyName != y.KeyName {
				return false
			}
		}
	}
	return true
}
