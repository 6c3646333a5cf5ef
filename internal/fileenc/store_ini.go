package fileenc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
	"gopkg.in/ini.v1"
)

// The INI store reads and writes with gopkg.in/ini.v1, as sops does, so
// the layout matches: each section is a mapping under its name (keys
// outside a section are in "DEFAULT"), values are strings, a key's or a
// section's comment block is one comment, and the metadata is the [sops]
// section with flattened keys and "\n" standing for newlines.

func parseINI(data []byte) (*Document, error) {
	cfg, err := ini.LoadSources(ini.LoadOptions{AllowNonUniqueSections: false}, data)
	if err != nil {
		return nil, &ParseError{Format: "ini", Msg: iniErrorMessage(err)}
	}
	root := newMap()
	doc := &Document{Format: FormatINI, Branches: []*yaml.Node{root}, docs: []*yaml.Node{nil}}
	for _, sec := range cfg.Sections() {
		if sec.Name() == MetadataKey {
			var pairs [][2]string
			for _, k := range sec.Keys() {
				pairs = append(pairs, [2]string{k.Name(), strings.ReplaceAll(k.Value(), `\n`, "\n")})
			}
			n, err := unflattenMetadata(pairs)
			if err != nil {
				return nil, err
			}
			md, err := parseMetadata(n)
			if err != nil {
				return nil, err
			}
			doc.Metadata = md
			continue
		}
		if sec.Name() == ini.DefaultSection && len(sec.Keys()) == 0 && sec.Comment == "" {
			continue
		}
		m := newMap()
		m.HeadComment = iniComment(sec.Comment)
		for _, k := range sec.Keys() {
			kn := newStr(k.Name())
			kn.HeadComment = iniComment(k.Comment)
			m.Content = append(m.Content, kn, newStr(k.Value()))
		}
		root.Content = append(root.Content, newStr(sec.Name()), m)
	}
	return doc, nil
}

// iniErrorMessage describes an ini.v1 error without the offending line,
// which may hold a secret.
func iniErrorMessage(err error) string {
	var dnf ini.ErrDelimiterNotFound
	var ekn ini.ErrEmptyKeyName
	msg := err.Error()
	switch {
	case errors.As(err, &dnf):
		return "a line is neither a section, a comment nor key = value"
	case errors.As(err, &ekn):
		return "a line has an empty key name"
	case strings.HasPrefix(msg, "unclosed section"):
		return "unclosed section header"
	case strings.HasPrefix(msg, "missing closing key quote"):
		return "missing closing key quote"
	case strings.HasPrefix(msg, "BOM"):
		return "invalid byte order mark"
	}
	return "invalid INI"
}

// iniComment turns an ini.v1 comment block into one "#" comment: the
// first line's marker is dropped, as sops does.
func iniComment(c string) string {
	c = strings.TrimSpace(c)
	if c == "" {
		return ""
	}
	c = strings.TrimSpace(strings.TrimLeft(c[:1], "#;") + c[1:])
	return "#" + c
}

func emitINI(d *Document, md *yaml.Node) ([]byte, error) {
	if len(d.Branches) != 1 {
		return nil, &ParseError{Format: "ini", Msg: "an INI file holds one document"}
	}
	cfg := ini.Empty()
	root := d.Branches[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		name, m := root.Content[i].Value, root.Content[i+1]
		if m.Kind != yaml.MappingNode {
			return nil, &ParseError{Format: "ini", Msg: fmt.Sprintf("%q is not a section: INI values must be in sections", truncate(name, 40))}
		}
		sec, err := cfg.NewSection(name)
		if err != nil {
			return nil, &ParseError{Format: "ini", Msg: err.Error()}
		}
		sec.Comment = iniWriteComment(joinComments(root.Content[i].HeadComment, m.HeadComment))
		for j := 0; j+1 < len(m.Content); j += 2 {
			k, v := m.Content[j], m.Content[j+1]
			if v.Kind != yaml.ScalarNode {
				return nil, &ParseError{Format: "ini", Msg: fmt.Sprintf("%q holds a nested value, which INI cannot", truncate(k.Value, 40))}
			}
			val := v.Value
			if v.ShortTag() == tagNull {
				val = ""
			}
			key, err := sec.NewKey(k.Value, val)
			if err != nil {
				return nil, &ParseError{Format: "ini", Msg: err.Error()}
			}
			key.Comment = iniWriteComment(k.HeadComment)
		}
	}
	if md != nil {
		sec, err := cfg.NewSection(MetadataKey)
		if err != nil {
			return nil, err
		}
		for _, kv := range flattenMetadata(md) {
			if _, err := sec.NewKey(kv[0], strings.ReplaceAll(kv[1], "\n", `\n`)); err != nil {
				return nil, err
			}
		}
	}
	var b bytes.Buffer
	if _, err := cfg.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// iniWriteComment turns a "#" comment back into an ini.v1 comment block:
// the first line loses its "#" (ini.v1 writes "; "), later lines keep
// their own markers.
func iniWriteComment(c string) string {
	var lines []string
	for _, l := range strings.Split(c, "\n") {
		l = strings.TrimSpace(l)
		if len(lines) == 0 {
			l = strings.TrimSpace(strings.TrimPrefix(l, "#"))
		}
		if l == "" || l == "#" || l == ";" {
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}
