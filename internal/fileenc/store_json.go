package fileenc

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The JSON store keeps key order, which encoding/json's maps would lose:
// objects become mapping nodes, numbers that fit an int64 are ints and
// other numbers floats (as sops decides), and output uses sops' layout
// (tab indentation, HTML characters escaped as encoding/json does).

type jsonParser struct {
	data  []byte
	pos   int
	depth int
}

func parseJSON(data []byte) (*Document, error) {
	p := &jsonParser{data: data}
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, p.errorf("empty document")
	}
	if p.data[p.pos] != '{' {
		return nil, p.errorf("the top level must be an object")
	}
	root, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("unexpected data after the top-level object")
	}
	doc := &Document{Format: FormatJSON, Branches: []*yaml.Node{root}, docs: []*yaml.Node{nil}}
	if mdNode := takeMetadataKey(root); mdNode != nil {
		md, err := parseMetadata(mdNode)
		if err != nil {
			return nil, err
		}
		doc.Metadata = md
	}
	return doc, nil
}

func (p *jsonParser) errorf(format string, args ...any) error {
	line := 1 + bytes.Count(p.data[:min(p.pos, len(p.data))], []byte{'\n'})
	return &ParseError{Format: "json", Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value() (*yaml.Node, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: s}, nil
	case c == 't':
		return p.literal("true", tagBool)
	case c == 'f':
		return p.literal("false", tagBool)
	case c == 'n':
		return p.literal("null", tagNull)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, p.errorf("unexpected character %q", p.data[p.pos])
}

func (p *jsonParser) literal(word, tag string) (*yaml.Node, error) {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		return nil, p.errorf("invalid literal")
	}
	p.pos += len(word)
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: word}, nil
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("nested more than %d levels", maxDepth)
	}
	return nil
}

func (p *jsonParser) object() (*yaml.Node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: tagMap}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return n, nil
	}
	seen := map[string]struct{}{}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expected a string key")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := seen[k]; dup {
			return nil, p.errorf("duplicate key %q", truncate(k, 40))
		}
		seen[k] = struct{}{}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expected ':' after a key")
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: k}, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return n, nil
		default:
			return nil, p.errorf("expected ',' or '}' in an object")
		}
	}
}

func (p *jsonParser) array() (*yaml.Node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // [
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: tagSeq}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return n, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return n, nil
		default:
			return nil, p.errorf("expected ',' or ']' in an array")
		}
	}
}

func (p *jsonParser) number() (*yaml.Node, error) {
	start := p.pos
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil, p.errorf("invalid number")
	}
	isFloat := false
	if i < len(d) && d[i] == '.' {
		isFloat = true
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return nil, p.errorf("invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		isFloat = true
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return nil, p.errorf("invalid number")
		}
	}
	p.pos = i
	lex := string(d[start:i])
	if !isFloat {
		if v, err := strconv.ParseInt(lex, 10, 64); err == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagInt, Value: strconv.FormatInt(v, 10)}, nil
		}
	}
	f, err := strconv.ParseFloat(lex, 64)
	if err != nil && !math.IsInf(f, 0) {
		return nil, p.errorf("invalid number")
	}
	if math.IsInf(f, 0) {
		return nil, p.errorf("number out of range")
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagFloat, Value: strconv.FormatFloat(f, 'g', -1, 64)}, nil
}

func (p *jsonParser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	d := p.data
	// Fast path: no escapes.
	for i := start; i < len(d); i++ {
		c := d[i]
		if c == '"' {
			s := d[start:i]
			if !utf8.Valid(s) {
				break
			}
			p.pos = i + 1
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	var b []byte
	i := start
	for {
		if i >= len(d) {
			return "", p.errorf("unterminated string")
		}
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return string(b), nil
		case c < 0x20:
			p.pos = i
			return "", p.errorf("control character in a string")
		case c == '\\':
			if i+1 >= len(d) {
				return "", p.errorf("unterminated string")
			}
			i++
			switch d[i] {
			case '"', '\\', '/':
				b = append(b, d[i])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, n, err := p.unicodeEscape(i - 1)
				if err != nil {
					return "", err
				}
				b = utf8.AppendRune(b, r)
				i += n - 2
			default:
				p.pos = i
				return "", p.errorf("invalid escape in a string")
			}
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				r = utf8.RuneError // as encoding/json: invalid UTF-8 becomes U+FFFD
			}
			b = utf8.AppendRune(b, r)
			i += size
		}
	}
}

// unicodeEscape decodes \uXXXX (and a following low surrogate) at d[i];
// it returns the rune and the bytes consumed.
func (p *jsonParser) unicodeEscape(i int) (rune, int, error) {
	hex4 := func(at int) (rune, bool) {
		if at+6 > len(p.data) || p.data[at] != '\\' || p.data[at+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(p.data[at+2:at+6]), 16, 16)
		if err != nil {
			return 0, false
		}
		return rune(v), true
	}
	r, ok := hex4(i)
	if !ok {
		p.pos = i
		return 0, 0, p.errorf("invalid \\u escape")
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(i + 6); ok {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return dec, 12, nil
			}
		}
		return utf8.RuneError, 6, nil
	}
	return r, 6, nil
}

// emitJSON writes the document as sops does: tab indentation, keys in
// order, the metadata last.
func emitJSON(d *Document, md *yaml.Node) ([]byte, error) {
	if len(d.Branches) != 1 {
		return nil, &ParseError{Format: "json", Msg: fmt.Sprintf("a JSON file holds one document, this one has %d", len(d.Branches))}
	}
	root := *d.Branches[0]
	if md != nil {
		root.Content = append(root.Content[:len(root.Content):len(root.Content)], newStr(MetadataKey), md)
	}
	e := &jsonEmitter{}
	if err := e.value(&root, 0); err != nil {
		return nil, err
	}
	e.buf = append(e.buf, '\n')
	return e.buf, nil
}

type jsonEmitter struct {
	buf []byte
}

func (e *jsonEmitter) indent(depth int) {
	e.buf = append(e.buf, '\n')
	for range depth {
		e.buf = append(e.buf, '\t')
	}
}

func (e *jsonEmitter) value(n *yaml.Node, depth int) error {
	switch n.Kind {
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			e.buf = append(e.buf, "{}"...)
			return nil
		}
		e.buf = append(e.buf, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.indent(depth + 1)
			e.buf = appendJSONString(e.buf, n.Content[i].Value)
			e.buf = append(e.buf, ": "...)
			if err := e.value(n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		e.indent(depth)
		e.buf = append(e.buf, '}')
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			e.buf = append(e.buf, "[]"...)
			return nil
		}
		e.buf = append(e.buf, '[')
		for i, c := range n.Content {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.indent(depth + 1)
			if err := e.value(c, depth+1); err != nil {
				return err
			}
		}
		e.indent(depth)
		e.buf = append(e.buf, ']')
	case yaml.ScalarNode:
		if n.ShortTag() == tagStr {
			e.buf = appendJSONString(e.buf, n.Value)
			return nil
		}
		v, err := scalarValue(n)
		if err != nil {
			return err
		}
		switch x := v.(type) {
		case nil:
			e.buf = append(e.buf, "null"...)
		case bool:
			e.buf = strconv.AppendBool(e.buf, x)
		case int64:
			e.buf = strconv.AppendInt(e.buf, x, 10)
		case uint64:
			e.buf = strconv.AppendUint(e.buf, x, 10)
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return &ParseError{Format: "json", Msg: "JSON cannot hold infinity or NaN"}
			}
			e.buf = appendJSONFloat(e.buf, x)
		default:
			// Timestamps and other YAML types are strings in JSON.
			s := n.Value
			if t, ok := v.(interface{ Format(string) string }); ok {
				s = t.Format("2006-01-02T15:04:05.999999999Z07:00")
			}
			e.buf = appendJSONString(e.buf, s)
		}
	default:
		return &ParseError{Format: "json", Msg: "unexpected node"}
	}
	return nil
}

// appendJSONFloat formats like encoding/json.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with HTML escaping.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
