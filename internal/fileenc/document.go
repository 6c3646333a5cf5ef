package fileenc

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Format is a file format sops and Coffer encrypt.
type Format string

// The formats. Binary files are encrypted whole as the single value
// "data" and stored as JSON.
const (
	FormatYAML   Format = "yaml"
	FormatJSON   Format = "json"
	FormatDotenv Format = "dotenv"
	FormatINI    Format = "ini"
	FormatBinary Format = "binary"
)

// ParseFormat parses a --input-type/--output-type value.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "yaml", "yml":
		return FormatYAML, nil
	case "json":
		return FormatJSON, nil
	case "dotenv", "env":
		return FormatDotenv, nil
	case "ini":
		return FormatINI, nil
	case "binary":
		return FormatBinary, nil
	}
	return "", fmt.Errorf("%w: unknown format %q (want yaml, json, dotenv, ini or binary)", ErrUnsupported, s)
}

// FormatForPath picks the format from a file name as sops does: .yaml and
// .yml, .json, .env, .ini; anything else is binary.
func FormatForPath(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return FormatYAML
	case ".json":
		return FormatJSON
	case ".env":
		return FormatDotenv
	case ".ini":
		return FormatINI
	}
	return FormatBinary
}

// Document is a parsed file: one tree per document (only YAML files have
// several) and the metadata when it is encrypted.
type Document struct {
	Format Format
	// Branches are the documents' top-level mappings, without the
	// metadata key.
	Branches []*yaml.Node
	// docs are the YAML document nodes (top-of-file comments); nil
	// entries elsewhere.
	docs []*yaml.Node
	// Metadata is nil for a plaintext document.
	Metadata *Metadata
}

// maxNodes bounds the size of a tree after YAML aliases are expanded.
const maxNodes = 2_000_000

// maxDepth bounds nesting.
const maxDepth = 1000

// Parse reads an encrypted file. It fails with ErrNotEncrypted when the
// metadata is missing.
func Parse(data []byte, f Format) (*Document, error) {
	var doc *Document
	var err error
	switch f {
	case FormatBinary, FormatJSON:
		doc, err = parseJSON(data)
		if err == nil {
			doc.Format = f
		}
	default:
		doc, err = parsePlainOrEncrypted(data, f)
	}
	if err != nil {
		return nil, err
	}
	if doc.Metadata == nil {
		return nil, ErrNotEncrypted
	}
	if f == FormatBinary {
		if err := checkBinary(doc); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// ParsePlain reads a plaintext file to encrypt. It fails with
// ErrAlreadyEncrypted when the file has sops metadata.
func ParsePlain(data []byte, f Format) (*Document, error) {
	var doc *Document
	var err error
	if f == FormatBinary {
		root := newMap()
		root.Content = append(root.Content, newStr("data"), newStr(string(data)))
		return &Document{Format: f, Branches: []*yaml.Node{root}, docs: []*yaml.Node{nil}}, nil
	}
	doc, err = parsePlainOrEncrypted(data, f)
	if err != nil {
		return nil, err
	}
	if doc.Metadata != nil {
		return nil, ErrAlreadyEncrypted
	}
	return doc, nil
}

func parsePlainOrEncrypted(data []byte, f Format) (*Document, error) {
	switch f {
	case FormatYAML:
		return parseYAML(data)
	case FormatJSON:
		return parseJSON(data)
	case FormatDotenv:
		return parseDotenv(data)
	case FormatINI:
		return parseINI(data)
	}
	return nil, fmt.Errorf("%w: format %q", ErrUnsupported, f)
}

func checkBinary(doc *Document) error {
	if len(doc.Branches) != 1 || len(doc.Branches[0].Content) != 2 || doc.Branches[0].Content[0].Value != "data" {
		return &ParseError{Format: "binary", Msg: `an encrypted binary file holds exactly one value, "data"`}
	}
	return nil
}

// Emit writes the document in format f: encrypted when it has metadata,
// plaintext otherwise.
func (d *Document) Emit(f Format) ([]byte, error) {
	var md *yaml.Node
	if d.Metadata != nil {
		md = d.Metadata.node()
	}
	switch f {
	case FormatYAML:
		return emitYAML(d, md)
	case FormatJSON:
		return emitJSON(d, md)
	case FormatDotenv:
		return emitDotenv(d, md)
	case FormatINI:
		return emitINI(d, md)
	case FormatBinary:
		if md != nil {
			return emitJSON(d, md)
		}
		if err := checkBinary(d); err != nil {
			return nil, err
		}
		v := d.Branches[0].Content[1]
		if v.Kind != yaml.ScalarNode {
			return nil, &ParseError{Format: "binary", Msg: `"data" is not a string`}
		}
		return []byte(v.Value), nil
	}
	return nil, fmt.Errorf("%w: format %q", ErrUnsupported, f)
}

// Clone returns a deep copy of the document's trees (metadata is shared).
func (d *Document) Clone() *Document {
	c := &Document{Format: d.Format, Metadata: d.Metadata}
	for i, b := range d.Branches {
		c.Branches = append(c.Branches, cloneNode(b))
		if i < len(d.docs) && d.docs[i] != nil {
			dn := *d.docs[i]
			dn.Content = nil
			c.docs = append(c.docs, &dn)
		} else {
			c.docs = append(c.docs, nil)
		}
	}
	return c
}

func cloneNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Anchor = ""
	if n.Kind == yaml.AliasNode {
		return cloneNode(n.Alias)
	}
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			c.Content[i] = cloneNode(ch)
		}
	}
	return &c
}

// checkTree validates a branch: string keys, no duplicate keys, bounded
// depth.
func checkTree(n *yaml.Node, format string, depth int) error {
	if depth > maxDepth {
		return &ParseError{Format: format, Line: n.Line, Msg: fmt.Sprintf("nested more than %d levels", maxDepth)}
	}
	switch n.Kind {
	case yaml.MappingNode:
		if len(n.Content)%2 != 0 {
			return &ParseError{Format: format, Line: n.Line, Msg: "mapping with a key and no value"}
		}
		seen := make(map[string]struct{}, len(n.Content)/2)
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || (k.ShortTag() != tagStr && k.ShortTag() != "!") {
				return &ParseError{Format: format, Line: k.Line, Msg: "only string keys are supported"}
			}
			if _, dup := seen[k.Value]; dup {
				return &ParseError{Format: format, Line: k.Line, Msg: fmt.Sprintf("duplicate key %q", truncate(k.Value, 40))}
			}
			seen[k.Value] = struct{}{}
			if err := checkTree(n.Content[i+1], format, depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := checkTree(c, format, depth+1); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
	default:
		return &ParseError{Format: format, Line: n.Line, Msg: "unexpected node"}
	}
	return nil
}

// takeMetadataKey removes the top-level "sops" entry from a branch and
// returns its value.
func takeMetadataKey(root *yaml.Node) *yaml.Node {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == MetadataKey {
			v := root.Content[i+1]
			// Keep comments that were attached to the removed key.
			k := root.Content[i]
			root.Content = append(root.Content[:i:i], root.Content[i+2:]...)
			if k.HeadComment != "" {
				if i < len(root.Content) {
					root.Content[i].HeadComment = joinComments(k.HeadComment, root.Content[i].HeadComment)
				} else {
					root.FootComment = joinComments(root.FootComment, k.HeadComment)
				}
			}
			return v
		}
	}
	return nil
}
