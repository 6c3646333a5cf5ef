package database

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

const (
	// maxURLLen bounds connection_url.
	maxURLLen = 4096
	// redactedMark replaces secrets in error messages.
	redactedMark = "[REDACTED]"
	// maskedPassword replaces a literal password in a connection_url read
	// back, as Vault shows it.
	maskedPassword = "*****"
)

// isURL reports whether a connection string is a URL rather than
// keyword/value pairs.
func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// connString renders connection_url with the admin's username and
// password: percent-encoded in a URL, quoted in keyword/value form, or as
// they are with disableEscaping (the caller then makes sure they need
// neither).
func connString(tmpl, username, password string, disableEscaping bool) string {
	esc := func(s string) string { return s }
	if !disableEscaping {
		if isURL(tmpl) {
			esc = escapeURLPart
		} else {
			esc = quoteDSNValue
		}
	}
	return strings.NewReplacer("{{username}}", esc(username), "{{password}}", esc(password)).Replace(tmpl)
}

// escapeURLPart percent-encodes every byte but the unreserved ones, which
// is right in both the userinfo and the query of a URL.
func escapeURLPart(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// quoteDSNValue quotes a keyword/value connection string value.
func quoteDSNValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `'` + strings.ReplaceAll(s, `'`, `\'`) + `'`
}

// Placeholders used to parse a connection_url whose credentials are not
// known or must not be used.
const (
	placeholderUser     = "coffer-placeholder-user"
	placeholderPassword = "coffer-placeholder-password"
)

// parseConnURL checks that connection_url parses, and returns the
// password that the URL itself carries (written literally, or taken by
// the driver from PGPASSWORD or a password file), which must be redacted
// like the configured one. Errors never quote the URL.
func parseConnURL(tmpl string, disableEscaping bool) (literal string, err error) {
	if tmpl == "" {
		return "", &ParseError{Field: "connection_url", Msg: "is required"}
	}
	if len(tmpl) > maxURLLen {
		return "", &ParseError{Field: "connection_url", Msg: "is too long"}
	}
	cfg, err := pgx.ParseConfig(connString(tmpl, placeholderUser, placeholderPassword, disableEscaping))
	if err != nil {
		return "", &ParseError{Field: "connection_url", Msg: "cannot be parsed as a PostgreSQL URL or keyword/value string"}
	}
	if cfg.Password != placeholderPassword {
		literal = cfg.Password
	}
	return literal, nil
}

// redact replaces every secret in s, in the forms it may take in a
// connection string or a driver's message (as is, percent-encoded,
// quoted), and every word sharing minFragment bytes with one, by
// redactedMark. Secrets shorter than 4 bytes are replaced whole as well,
// at the risk of masking unrelated text.
func redact(s string, secrets ...string) string {
	return redactFragments(redactWhole(s, secrets), secrets)
}

// redactWhole replaces the whole secrets, in all their forms.
func redactWhole(s string, secrets []string) string {
	var pairs []string
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		forms := []string{sec, escapeURLPart(sec), url.QueryEscape(sec), url.PathEscape(sec), quoteDSNValue(sec)}
		for _, f := range forms {
			pairs = append(pairs, f, redactedMark)
		}
	}
	if len(pairs) == 0 {
		return s
	}
	// Longest first, so that a quoted form is replaced whole.
	return replaceLongestFirst(s, pairs)
}

// minFragment is the length from which a piece of a secret counts as
// revealing it.
const minFragment = 4

// redactFragments replaces every word of s that shares minFragment or
// more consecutive bytes with a secret. PostgreSQL's errors quote the
// token near a syntax error ("trailing junk after numeric literal at or
// near "5y4J""), which can be a piece of a password rather than the whole.
// Words are runs of bytes other than blanks, quotes, brackets and commas.
func redactFragments(s string, secrets []string) string {
	var long []string
	for _, sec := range secrets {
		if len(sec) >= minFragment {
			long = append(long, sec)
		}
	}
	if len(long) == 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if wordDelim(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && !wordDelim(s[j]) {
			j++
		}
		if word := s[i:j]; word != redactedMark && sharesFragment(word, long) {
			b.WriteString(redactedMark)
		} else {
			b.WriteString(word)
		}
		i = j
	}
	return b.String()
}

func wordDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`', '(', ')', ',':
		return true
	}
	return false
}

func sharesFragment(word string, secrets []string) bool {
	for k := 0; k+minFragment <= len(word); k++ {
		piece := word[k : k+minFragment]
		for _, sec := range secrets {
			if strings.Contains(sec, piece) {
				return true
			}
		}
	}
	return false
}

func replaceLongestFirst(s string, pairs []string) string {
	type pair struct{ old, new string }
	ps := make([]pair, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		ps = append(ps, pair{pairs[i], pairs[i+1]})
	}
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && len(ps[j].old) > len(ps[j-1].old); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	for _, p := range ps {
		s = strings.ReplaceAll(s, p.old, p.new)
	}
	return s
}

// dsnPassword matches a password in keyword/value form.
var dsnPassword = regexp.MustCompile(`(?i)\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s]*)`)

// displayURL is connection_url as read back: the {{username}} and
// {{password}} templates stay, a literal password is masked.
func displayURL(tmpl, literal string) string {
	if isURL(tmpl) {
		u, err := url.Parse(connString(tmpl, placeholderUser, placeholderPassword, false))
		if err != nil {
			return redactWhole(tmpl, []string{literal})
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok && p != placeholderPassword {
				u.User = url.UserPassword(u.User.Username(), maskedPassword)
			}
		}
		q := u.Query()
		for _, k := range []string{"password", "sslpassword"} {
			if v := q.Get(k); v != "" && v != placeholderPassword {
				q.Set(k, maskedPassword)
			}
		}
		u.RawQuery = q.Encode()
		out := u.String()
		out = strings.ReplaceAll(out, placeholderUser, "{{username}}")
		out = strings.ReplaceAll(out, placeholderPassword, "{{password}}")
		return redactWhole(strings.ReplaceAll(out, "%2A%2A%2A%2A%2A", maskedPassword), []string{literal})
	}
	out := dsnPassword.ReplaceAllStringFunc(tmpl, func(m string) string {
		k, v, _ := strings.Cut(m, "=")
		if strings.TrimSpace(v) == "{{password}}" || strings.TrimSpace(v) == "'{{password}}'" {
			return m
		}
		return k + "=" + maskedPassword
	})
	return redactWhole(out, []string{literal})
}
