package fileenc

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The dotenv store, as sops reads it: every non-blank line is a comment
// ("#...") or KEY=VALUE split at the first "=", the key kept as written
// (an "export " prefix is part of it) and "\n" in the value standing for
// a newline. Values are strings. The metadata is in "sops_"-prefixed keys.
// Blank lines are dropped, as sops does.

const dotenvMetaPrefix = MetadataKey + "_"

func parseDotenv(data []byte) (*Document, error) {
	root := newMap()
	var pendingComments []string
	var meta [][2]string
	lines := strings.Split(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	seen := map[string]struct{}{}
	for i, raw := range lines {
		line := strings.TrimSuffix(raw, "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(trimmed, "#"):
			pendingComments = append(pendingComments, trimmed)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, &ParseError{Format: "dotenv", Line: i + 1, Msg: "line is neither KEY=VALUE nor a comment"}
		}
		if k == "" {
			return nil, &ParseError{Format: "dotenv", Line: i + 1, Msg: "empty key"}
		}
		v = strings.ReplaceAll(v, `\n`, "\n")
		if strings.HasPrefix(k, dotenvMetaPrefix) {
			meta = append(meta, [2]string{strings.TrimPrefix(k, dotenvMetaPrefix), v})
			continue
		}
		if _, dup := seen[k]; dup {
			return nil, &ParseError{Format: "dotenv", Line: i + 1, Msg: fmt.Sprintf("duplicate key %q", truncate(k, 40))}
		}
		seen[k] = struct{}{}
		kn := &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: k, Line: i + 1}
		kn.HeadComment = strings.Join(pendingComments, "\n")
		pendingComments = nil
		root.Content = append(root.Content, kn, &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: v, Line: i + 1})
	}
	root.FootComment = strings.Join(pendingComments, "\n")
	doc := &Document{Format: FormatDotenv, Branches: []*yaml.Node{root}, docs: []*yaml.Node{nil}}
	if len(meta) > 0 {
		n, err := unflattenMetadata(meta)
		if err != nil {
			return nil, err
		}
		md, err := parseMetadata(n)
		if err != nil {
			return nil, err
		}
		doc.Metadata = md
	}
	return doc, nil
}

func emitDotenv(d *Document, md *yaml.Node) ([]byte, error) {
	if len(d.Branches) != 1 {
		return nil, &ParseError{Format: "dotenv", Msg: "a dotenv file holds one document"}
	}
	var b bytes.Buffer
	writeComments := func(c string) {
		if c == "" {
			return
		}
		for _, l := range strings.Split(c, "\n") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	root := d.Branches[0]
	writeComments(root.HeadComment)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return nil, &ParseError{Format: "dotenv", Msg: fmt.Sprintf("%q holds a nested value, which dotenv cannot", truncate(k.Value, 40))}
		}
		if strings.ContainsAny(k.Value, "=\n") || strings.HasPrefix(strings.TrimSpace(k.Value), "#") || strings.TrimSpace(k.Value) == "" {
			return nil, &ParseError{Format: "dotenv", Msg: fmt.Sprintf("key %q cannot be written in dotenv", truncate(k.Value, 40))}
		}
		writeComments(k.HeadComment)
		writeComments(v.HeadComment)
		b.WriteString(k.Value)
		b.WriteByte('=')
		val := v.Value
		if v.ShortTag() == tagNull {
			val = ""
		}
		b.WriteString(strings.ReplaceAll(val, "\n", `\n`))
		b.WriteByte('\n')
		writeComments(v.FootComment)
		writeComments(k.FootComment)
	}
	writeComments(root.FootComment)
	if md != nil {
		for _, kv := range flattenMetadata(md) {
			b.WriteString(dotenvMetaPrefix)
			b.WriteString(kv[0])
			b.WriteByte('=')
			b.WriteString(strings.ReplaceAll(kv[1], "\n", `\n`))
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}
