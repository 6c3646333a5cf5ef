package fileenc

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PathElem is one step of a tree path: a map key or a list index.
type PathElem struct {
	Key     string
	Index   int
	IsIndex bool
}

func (p PathElem) String() string {
	if p.IsIndex {
		return "[" + strconv.Itoa(p.Index) + "]"
	}
	return `["` + p.Key + `"]`
}

// ParsePath parses sops' --extract syntax: ["key"]["sub"][0] (keys in
// double or single quotes, indices as decimal numbers).
func ParsePath(s string) ([]PathElem, error) {
	var out []PathElem
	i := 0
	bad := func(msg string) error {
		return &ParseError{Msg: fmt.Sprintf("path %q: %s (want [\"key\"][0]...)", truncate(s, 80), msg)}
	}
	for i < len(s) {
		if s[i] != '[' {
			return nil, bad("expected '['")
		}
		i++
		if i >= len(s) {
			return nil, bad("unterminated '['")
		}
		switch q := s[i]; {
		case q == '"' || q == '\'':
			i++
			var b strings.Builder
			for {
				if i >= len(s) {
					return nil, bad("unterminated string")
				}
				c := s[i]
				if c == '\\' && i+1 < len(s) && (s[i+1] == q || s[i+1] == '\\') {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == q {
					i++
					break
				}
				b.WriteByte(c)
				i++
			}
			out = append(out, PathElem{Key: b.String()})
		case q >= '0' && q <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(s[i:j])
			if err != nil {
				return nil, bad("index too large")
			}
			out = append(out, PathElem{Index: n, IsIndex: true})
			i = j
		default:
			return nil, bad("expected a quoted key or an index")
		}
		if i >= len(s) || s[i] != ']' {
			return nil, bad("expected ']'")
		}
		i++
	}
	if len(out) == 0 {
		return nil, bad("empty path")
	}
	return out, nil
}

func pathString(p []PathElem) string {
	var b strings.Builder
	for _, e := range p {
		b.WriteString(e.String())
	}
	return b.String()
}

// Lookup returns the node at path in the document's first tree.
func (d *Document) Lookup(path []PathElem) (*yaml.Node, error) {
	if len(d.Branches) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrPathNotFound, pathString(path))
	}
	n := d.Branches[0]
	for i, e := range path {
		c, _ := child(n, e)
		if c == nil {
			return nil, fmt.Errorf("%w: %s", ErrPathNotFound, pathString(path[:i+1]))
		}
		n = c
	}
	return n, nil
}

// child returns n's child at e and its position in n.Content.
func child(n *yaml.Node, e PathElem) (*yaml.Node, int) {
	switch {
	case e.IsIndex && n.Kind == yaml.SequenceNode:
		if e.Index < len(n.Content) {
			return n.Content[e.Index], e.Index
		}
	case !e.IsIndex && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == e.Key {
				return n.Content[i+1], i + 1
			}
		}
	}
	return nil, -1
}

// Set puts value at path in the first tree, creating missing maps on the
// way. A list index may be the list's length, which appends.
func (d *Document) Set(path []PathElem, value *yaml.Node) error {
	if len(d.Branches) == 0 {
		d.Branches = []*yaml.Node{newMap()}
		d.docs = []*yaml.Node{nil}
	}
	if path[0].IsIndex {
		return fmt.Errorf("%w: the top level is a mapping, %s is an index", ErrPathNotFound, path[0])
	}
	n := d.Branches[0]
	for i, e := range path {
		last := i == len(path)-1
		c, pos := child(n, e)
		if c != nil {
			if last {
				// Keep the comments around the old value.
				value.HeadComment, value.LineComment, value.FootComment = c.HeadComment, c.LineComment, c.FootComment
				n.Content[pos] = value
				return nil
			}
			n = c
			continue
		}
		var next *yaml.Node
		switch {
		case last:
			next = value
		case path[i+1].IsIndex:
			next = newSeq()
		default:
			next = newMap()
		}
		switch {
		case e.IsIndex && n.Kind == yaml.SequenceNode && e.Index == len(n.Content):
			n.Content = append(n.Content, next)
		case !e.IsIndex && n.Kind == yaml.MappingNode:
			n.Content = append(n.Content, newStr(e.Key), next)
		default:
			return fmt.Errorf("%w: cannot set %s", ErrPathNotFound, pathString(path[:i+1]))
		}
		n = next
	}
	return nil
}

// Unset removes the value at path from the first tree.
func (d *Document) Unset(path []PathElem) error {
	if len(d.Branches) == 0 {
		return fmt.Errorf("%w: %s", ErrPathNotFound, pathString(path))
	}
	parent := d.Branches[0]
	if len(path) > 1 {
		var err error
		parent, err = d.Lookup(path[:len(path)-1])
		if err != nil {
			return err
		}
	}
	_, pos := child(parent, path[len(path)-1])
	if pos < 0 {
		return fmt.Errorf("%w: %s", ErrPathNotFound, pathString(path))
	}
	if parent.Kind == yaml.MappingNode {
		parent.Content = append(parent.Content[:pos-1], parent.Content[pos+1:]...)
	} else {
		parent.Content = append(parent.Content[:pos], parent.Content[pos+1:]...)
	}
	return nil
}

// ParseJSONValue parses a JSON value (as `set` takes it) into a tree
// node.
func ParseJSONValue(data []byte) (*yaml.Node, error) {
	p := &jsonParser{data: data}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("unexpected data after the value")
	}
	return v, nil
}

// EmitValue renders a subtree for --extract: strings as they are, other
// scalars and collections in format f.
func EmitValue(n *yaml.Node, f Format) ([]byte, error) {
	if n.Kind == yaml.ScalarNode {
		if n.ShortTag() == tagStr {
			return []byte(n.Value), nil
		}
		v, err := scalarValue(n)
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case nil:
			return []byte("null\n"), nil
		case float64:
			if f == FormatJSON {
				return append(appendJSONFloat(nil, x), '\n'), nil
			}
		}
		return []byte(n.Value + "\n"), nil
	}
	switch f {
	case FormatJSON:
		e := &jsonEmitter{}
		if err := e.value(n, 0); err != nil {
			return nil, err
		}
		return append(e.buf, '\n'), nil
	case FormatYAML:
		if n.Kind == yaml.MappingNode {
			return emitYAML(&Document{Branches: []*yaml.Node{n}}, nil)
		}
		var b strings.Builder
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(yamlIndent)
		if err := enc.Encode(n); err != nil {
			return nil, err
		}
		_ = enc.Close()
		return []byte(b.String()), nil
	case FormatDotenv, FormatINI:
		if n.Kind == yaml.MappingNode {
			return (&Document{Format: f, Branches: []*yaml.Node{n}, docs: []*yaml.Node{nil}}).Emit(f)
		}
	}
	return nil, fmt.Errorf("%w: cannot print a list as %s", ErrUnsupported, f)
}
