package database

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-dev/coffer/internal/logical"
)

// maxStatementsLen bounds the total size of one statements field.
const maxStatementsLen = 64 << 10

// parseStatements reads a statements field as Vault does: a JSON array of
// strings, or one string. A string is not split on commas (SQL is full of
// them); each element may hold several statements separated by ';', which
// compileStatements splits. Empty elements are dropped.
func parseStatements(field string, v any) ([]string, error) {
	var raw []string
	switch x := v.(type) {
	case nil:
		return []string{}, nil
	case string:
		raw = []string{x}
	case []string:
		raw = x
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, logical.BadRequest("%s: every element must be a string", field)
			}
			raw = append(raw, s)
		}
	default:
		return nil, logical.BadRequest("%s: must be a string or a list of strings", field)
	}
	out := make([]string, 0, len(raw))
	total := 0
	for _, s := range raw {
		total += len(s)
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	if total > maxStatementsLen {
		return nil, logical.BadRequest("%s: longer than %d bytes", field, maxStatementsLen)
	}
	if _, err := compileStatements(field, out); err != nil {
		return nil, err
	}
	return out, nil
}

// compileStatements splits every element of list into single statements.
func compileStatements(field string, list []string) ([]string, error) {
	var out []string
	for _, s := range list {
		parts, err := splitStatements(s)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Field = field
			}
			return nil, asClient(err)
		}
		out = append(out, parts...)
	}
	return out, nil
}

// splitStatements splits SQL text into statements at the semicolons that
// are outside quotes and comments, following PostgreSQL's lexical rules:
// 'strings' (” inside; backslash escapes in E'strings'), "identifiers"
// ("" inside), $tag$dollar-quoted strings$tag$, -- line comments and
// nested /* block comments */. Statements are trimmed; pieces holding
// only blanks and comments are dropped. An unterminated quote or comment
// is a *ParseError.
func splitStatements(sql string) ([]string, error) {
	var out []string
	start, i, n := 0, 0, len(sql)
	code := false // the current piece holds something besides blanks and comments
	for i < n {
		c := sql[i]
		switch {
		case c == ';':
			if code {
				out = append(out, strings.TrimSpace(sql[start:i]))
			}
			start, code = i+1, false
			i++
		case c == '-' && i+1 < n && sql[i+1] == '-':
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = n
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			j, depth := i+2, 1
			for j < n && depth > 0 {
				switch {
				case sql[j] == '/' && j+1 < n && sql[j+1] == '*':
					depth++
					j += 2
				case sql[j] == '*' && j+1 < n && sql[j+1] == '/':
					depth--
					j += 2
				default:
					j++
				}
			}
			if depth > 0 {
				return nil, &ParseError{Msg: fmt.Sprintf("unterminated /* comment starting at byte %d", i)}
			}
			i = j
		case c == '\'' || c == '"':
			escapes := c == '\'' && i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i < 2 || !identByte(sql[i-2]))
			j, ok := quoteEnd(sql, i+1, c, escapes)
			if !ok {
				what := "quoted string"
				if c == '"' {
					what = "quoted identifier"
				}
				return nil, &ParseError{Msg: fmt.Sprintf("unterminated %s starting at byte %d", what, i)}
			}
			i, code = j, true
		case c == '$' && (i == 0 || !identByte(sql[i-1])):
			tag, ok := dollarTag(sql[i:])
			if !ok {
				i, code = i+1, true
				continue
			}
			end := strings.Index(sql[i+len(tag):], tag)
			if end < 0 {
				return nil, &ParseError{Msg: fmt.Sprintf("unterminated dollar-quoted string starting at byte %d", i)}
			}
			i, code = i+len(tag)+end+len(tag), true
		default:
			if !isBlank(c) {
				code = true
			}
			i++
		}
	}
	if code {
		out = append(out, strings.TrimSpace(sql[start:]))
	}
	return out, nil
}

// quoteEnd returns the index just past the quote q that closes the quoted
// text starting at i (doubled quotes stand for one; with escapes, a
// backslash escapes the next byte).
func quoteEnd(s string, i int, q byte, escapes bool) (int, bool) {
	for i < len(s) {
		switch {
		case escapes && s[i] == '\\':
			i += 2
		case s[i] == q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1, true
		default:
			i++
		}
	}
	return 0, false
}

// dollarTag returns the opening $tag$ at the start of s: "$$" or "$" +
// an identifier that does not start with a digit + "$".
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !identByte(c) || c == '$' || (j == 1 && c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}

// identByte reports whether c can be part of an unquoted identifier.
func identByte(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// templateVars are the values a statement template can use.
type templateVars struct {
	username   string // {{name}} and {{username}}
	password   string // {{password}}: the password, or its SCRAM verifier
	expiration string // {{expiration}}
}

// render substitutes the templates of a statement. Unknown {{...}} are
// left as they are. Every substituted value comes from a checked
// alphabet (see validUsername, generatePassword, scramVerifier), so none
// can close a quote or end a statement.
func render(stmt string, v templateVars) string {
	return strings.NewReplacer(
		"{{name}}", v.username,
		"{{username}}", v.username,
		"{{password}}", v.password,
		"{{expiration}}", v.expiration,
	).Replace(stmt)
}

// expirationLayout is the format of {{expiration}}, as Vault's PostgreSQL
// plugin renders it (a timestamp PostgreSQL's VALID UNTIL accepts).
const expirationLayout = "2006-01-02 15:04:05-0700"

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes a PostgreSQL string literal. Backslashes are
// doubled and the E” form used, so the result means the same whatever
// standard_conforming_strings is.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, `'`, `''`)
	if strings.Contains(s, `\`) {
		return `E'` + strings.ReplaceAll(s, `\`, `\\`) + `'`
	}
	return `'` + s + `'`
}
