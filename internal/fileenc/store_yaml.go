package fileenc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlIndent is sops' default YAML indentation.
const yamlIndent = 4

func parseYAML(data []byte) (*Document, error) {
	doc := &Document{Format: FormatYAML}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	budget := maxNodes
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &ParseError{Format: "yaml", Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		var root *yaml.Node
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) == 0:
			root = newMap()
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			root = n.Content[0]
		default:
			return nil, &ParseError{Format: "yaml", Line: n.Line, Msg: "unexpected document structure"}
		}
		if root.Kind == yaml.ScalarNode && root.ShortTag() == tagNull {
			// An empty document ("---" alone).
			root = &yaml.Node{Kind: yaml.MappingNode, Tag: tagMap, HeadComment: root.HeadComment, LineComment: root.LineComment, FootComment: root.FootComment}
		}
		if root.Kind != yaml.MappingNode {
			return nil, &ParseError{Format: "yaml", Line: root.Line, Msg: "the top level of a document must be a mapping"}
		}
		root, err = expandAliases(root, &budget, map[*yaml.Node]bool{}, 0)
		if err != nil {
			return nil, err
		}
		if err := checkTree(root, "yaml", 0); err != nil {
			return nil, err
		}
		if mdNode := takeMetadataKey(root); mdNode != nil && doc.Metadata == nil {
			md, err := parseMetadata(mdNode)
			if err != nil {
				return nil, err
			}
			doc.Metadata = md
		}
		dn := n
		dn.Content = nil
		doc.docs = append(doc.docs, &dn)
		doc.Branches = append(doc.Branches, root)
	}
	if len(doc.Branches) == 0 {
		doc.Branches = []*yaml.Node{newMap()}
		doc.docs = []*yaml.Node{nil}
	}
	return doc, nil
}

// expandAliases replaces aliases with copies of their anchors, as sops
// does (the encrypted file has no anchors), within a node budget that
// stops alias bombs.
func expandAliases(n *yaml.Node, budget *int, expanding map[*yaml.Node]bool, depth int) (*yaml.Node, error) {
	*budget--
	if *budget < 0 {
		return nil, &ParseError{Format: "yaml", Line: n.Line, Msg: "document too large after expanding aliases"}
	}
	if depth > maxDepth {
		return nil, &ParseError{Format: "yaml", Line: n.Line, Msg: fmt.Sprintf("nested more than %d levels", maxDepth)}
	}
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil {
			return nil, &ParseError{Format: "yaml", Line: n.Line, Msg: "unknown alias"}
		}
		if expanding[target] {
			return nil, &ParseError{Format: "yaml", Line: n.Line, Msg: "recursive alias"}
		}
		expanding[target] = true
		c, err := expandAliases(copyShallow(target), budget, expanding, depth+1)
		delete(expanding, target)
		if err != nil {
			return nil, err
		}
		c.HeadComment, c.LineComment, c.FootComment = n.HeadComment, n.LineComment, n.FootComment
		return c, nil
	}
	n.Anchor = ""
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].ShortTag() == "!!merge" {
				return nil, &ParseError{Format: "yaml", Line: n.Content[i].Line, Msg: "merge keys (<<) are not supported"}
			}
		}
	}
	for i, c := range n.Content {
		if hasAlias(c, 0) {
			e, err := expandAliases(c, budget, expanding, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content[i] = e
		} else {
			*budget -= countNodes(c)
			if *budget < 0 {
				return nil, &ParseError{Format: "yaml", Line: c.Line, Msg: "document too large"}
			}
		}
	}
	return n, nil
}

// copyShallow copies an anchored node so that expanding it in one place
// does not change the others.
func copyShallow(n *yaml.Node) *yaml.Node {
	c := *n
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			c.Content[i] = copyShallow(ch)
		}
	}
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	return &c
}

func hasAlias(n *yaml.Node, depth int) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" || depth > maxDepth {
		return true
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if n.Content[i].ShortTag() == "!!merge" {
				return true
			}
		}
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

func countNodes(n *yaml.Node) int {
	c := 1
	for _, ch := range n.Content {
		c += countNodes(ch)
	}
	return c
}

func emitYAML(d *Document, md *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(yamlIndent)
	for i, b := range d.Branches {
		root := *b
		if md != nil {
			// Comments at the end of the document go above the metadata,
			// as sops writes them.
			mk := newStr(MetadataKey)
			if n := len(b.Content); n >= 2 {
				last := *b.Content[n-2]
				mk.HeadComment = joinComments(last.FootComment, b.FootComment)
				last.FootComment = ""
				root.Content = append(b.Content[:n-2:n-2], &last, b.Content[n-1])
			} else {
				mk.HeadComment = b.FootComment
			}
			root.FootComment = ""
			root.Content = append(root.Content, mk, md)
		}
		doc := &yaml.Node{Kind: yaml.DocumentNode}
		if i < len(d.docs) && d.docs[i] != nil {
			doc.HeadComment, doc.LineComment, doc.FootComment = d.docs[i].HeadComment, d.docs[i].LineComment, d.docs[i].FootComment
		}
		if len(root.Content) == 0 {
			root.Style |= yaml.FlowStyle
		}
		doc.Content = []*yaml.Node{&root}
		if err := enc.Encode(doc); err != nil {
			return nil, &ParseError{Format: "yaml", Msg: "encode: " + err.Error()}
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
