package database

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// defaultUsernameTemplate is the username template of Vault's PostgreSQL
// plugin: v-<display name, 8>-<role, 8>-<20 random>-<unix time>, cut to
// PostgreSQL's 63-byte identifier limit.
const defaultUsernameTemplate = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`

const (
	// maxTemplateLen bounds a username_template.
	maxTemplateLen = 2048
	// maxUsernameLen is PostgreSQL's identifier limit (NAMEDATALEN - 1).
	maxUsernameLen = 63
	// maxRendered bounds what a template may write while rendering.
	maxRendered = 1024
	// maxRandom bounds `random N`.
	maxRandom = 256
	// maxFormatWidth bounds widths and precisions in printf formats.
	maxFormatWidth = 256
)

// usernameTemplate renders usernames for dynamic credentials. It is a Go
// text/template restricted to what cannot run away: actions, if and with
// (no range, no define or template), printf without '*' widths or widths
// over maxFormatWidth, and output bounded by maxRendered.
type usernameTemplate struct {
	t *template.Template
}

// usernameInput is the data a username template sees.
type usernameInput struct {
	DisplayName string
	RoleName    string
}

// usernameFuncs are the functions of Vault's username templates.
var usernameFuncs = template.FuncMap{
	"random":           randomAlnum,
	"truncate":         truncate,
	"truncate_sha256":  truncateSHA256,
	"uppercase":        strings.ToUpper,
	"lowercase":        strings.ToLower,
	"replace":          func(old, repl, s string) string { return strings.ReplaceAll(s, old, repl) },
	"sha256":           func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
	"base64":           func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"unix_time":        func() string { return strconv.FormatInt(time.Now().Unix(), 10) },
	"unix_time_millis": func() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) },
	"timestamp":        func(layout string) string { return time.Now().UTC().Format(layout) },
	"uuid":             newUUID,
	"printf":           boundedPrintf,
}

// parseUsernameTemplate parses and checks a username_template ("" means
// the default).
func parseUsernameTemplate(src string) (*usernameTemplate, error) {
	if src == "" {
		src = defaultUsernameTemplate
	}
	if len(src) > maxTemplateLen {
		return nil, &ParseError{Field: "username_template", Msg: fmt.Sprintf("longer than %d bytes", maxTemplateLen)}
	}
	t, err := template.New("username").Option("missingkey=error").Funcs(usernameFuncs).Parse(src)
	if err != nil {
		return nil, &ParseError{Field: "username_template", Msg: strings.TrimPrefix(err.Error(), "template: ")}
	}
	if len(t.Templates()) != 1 || t.Tree == nil {
		return nil, &ParseError{Field: "username_template", Msg: "define and block are not allowed"}
	}
	if err := checkTemplateNode(t.Tree.Root); err != nil {
		return nil, err
	}
	return &usernameTemplate{t: t}, nil
}

// checkTemplateNode allows text, actions, comments, if and with.
func checkTemplateNode(n parse.Node) error {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return nil
		}
		for _, c := range x.Nodes {
			if err := checkTemplateNode(c); err != nil {
				return err
			}
		}
		return nil
	case *parse.TextNode, *parse.ActionNode, *parse.CommentNode:
		return nil
	case *parse.IfNode:
		return checkBranch(&x.BranchNode)
	case *parse.WithNode:
		return checkBranch(&x.BranchNode)
	default:
		return &ParseError{Field: "username_template", Msg: "only actions, if and with are allowed (no range, template or break)"}
	}
}

func checkBranch(b *parse.BranchNode) error {
	if err := checkTemplateNode(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return checkTemplateNode(b.ElseList)
	}
	return nil
}

// errTooLong stops a template that writes more than maxRendered bytes.
var errTooLong = errors.New("output too long")

type boundedBuffer struct{ bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxRendered {
		return 0, errTooLong
	}
	return b.Buffer.Write(p)
}

// generate renders a username for a request by displayName on role, and
// checks that it is one validUsername accepts.
func (u *usernameTemplate) generate(displayName, role string) (string, error) {
	var buf boundedBuffer
	err := u.t.Execute(&buf, usernameInput{DisplayName: sanitizeDisplayName(displayName), RoleName: role})
	if err != nil {
		msg := err.Error()
		if errors.Is(err, errTooLong) {
			msg = "output too long"
		}
		return "", &ParseError{Field: "username_template", Msg: "cannot render: " + strings.TrimPrefix(msg, "template: ")}
	}
	name := strings.TrimSpace(buf.String())
	if err := validUsername(name); err != nil {
		return "", &ParseError{Field: "username_template", Msg: "rendered an unusable username: " + err.Error()}
	}
	return name, nil
}

// sanitizeDisplayName keeps the characters a username may hold; others
// become '-'. A token's display name is chosen by whoever created it.
func sanitizeDisplayName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !usernameByte(c) {
			b[i] = '-'
		}
	}
	return string(b)
}

// usernameByte reports whether c may appear in a database username. The
// set leaves out quotes, backslashes, '$', ';' and blanks, so a username
// substituted into a statement template can neither end a quoted name or
// string, a dollar-quoted body, nor the statement.
func usernameByte(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '_' || c == '-' || c == '.' || c == '@'
}

// validUsername checks a username: 1 to 63 bytes from usernameByte.
func validUsername(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > maxUsernameLen {
		return fmt.Errorf("longer than %d bytes", maxUsernameLen)
	}
	for i := 0; i < len(s); i++ {
		if !usernameByte(s[i]) {
			return errors.New("only letters, digits, '_', '-', '.' and '@' are allowed")
		}
	}
	return nil
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomFrom returns n characters drawn uniformly from alphabet
// (len(alphabet) <= 256) with crypto/rand, by rejection sampling.
func randomFrom(alphabet string, n int) (string, error) {
	out := make([]byte, 0, n)
	limit := 256 - 256%len(alphabet)
	buf := make([]byte, n+n/2+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit {
				out = append(out, alphabet[int(b)%len(alphabet)])
				if len(out) == n {
					break
				}
			}
		}
	}
	return string(out), nil
}

func randomAlnum(n int) (string, error) {
	if n < 1 || n > maxRandom {
		return "", fmt.Errorf("random: length must be from 1 to %d", maxRandom)
	}
	return randomFrom(alnum, n)
}

func truncate(n int, s string) (string, error) {
	if n <= 0 {
		return "", fmt.Errorf("truncate: length must be > 0, not %d", n)
	}
	if len(s) > n {
		return s[:n], nil
	}
	return s, nil
}

// truncateSHA256 cuts s to n bytes, the last 8 of which are then the
// first 8 hex digits of the SHA-256 of the part cut away (with the 8 bytes
// it replaces), so that long names stay distinct.
func truncateSHA256(n int, s string) (string, error) {
	if n <= 8 {
		return "", fmt.Errorf("truncate_sha256: length must be > 8, not %d", n)
	}
	if len(s) <= n {
		return s, nil
	}
	cut := n - 8
	h := sha256.Sum256([]byte(s[cut:]))
	return s[:cut] + hex.EncodeToString(h[:])[:8], nil
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// boundedPrintf is fmt.Sprintf refusing '*' widths and widths or
// precisions over maxFormatWidth, which would let a template allocate
// without bound.
func boundedPrintf(format string, args ...any) (string, error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		num := 0
		for ; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				return "", errors.New("printf: '*' widths are not allowed")
			case c >= '0' && c <= '9':
				num = num*10 + int(c-'0')
				if num > maxFormatWidth {
					return "", fmt.Errorf("printf: widths and precisions over %d are not allowed", maxFormatWidth)
				}
				continue
			case c == '.' || c == '+' || c == '-' || c == '#' || c == ' ' || c == '[' || c == ']':
				num = 0
				continue
			}
			break
		}
	}
	return fmt.Sprintf(format, args...), nil
}
