package sealedsecrets

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode"

	corev1 "k8s.io/api/core/v1"
)

// TemplateError reports a spec.template.data item that did not parse or
// execute. It names the item; it never quotes decrypted values (the
// functions below return errors without their inputs).
type TemplateError struct {
	Item string
	Err  error
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("sealedsecrets: template data item %q: %v", e.Item, e.Err)
}
func (e *TemplateError) Unwrap() error { return e.Err }

// renderTemplates executes each template item over the decrypted values
// (as strings, item name -> value) and stores the result in secret.Data.
// Like the Bitnami controller, a missing key renders as "<no value>".
func renderTemplates(secret *corev1.Secret, templates map[string]string, items map[string][]byte) error {
	values := make(map[string]string, len(items))
	for k, v := range items {
		values[k] = string(v)
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	for _, name := range slices.Sorted(maps.Keys(templates)) {
		t, err := template.New(name).Funcs(templateFuncs(&budget{left: maxTemplateAlloc})).Parse(templates[name])
		if err != nil {
			return &TemplateError{Item: name, Err: err}
		}
		if err := checkTemplate(t); err != nil {
			return &TemplateError{Item: name, Err: err}
		}
		w := &limitedBuffer{max: maxTemplateOutput}
		if err := t.Execute(w, values); err != nil {
			if w.over {
				return &TemplateError{Item: name, Err: errTemplateOutput}
			}
			return &TemplateError{Item: name, Err: execError(err)}
		}
		secret.Data[name] = w.buf.Bytes()
	}
	return nil
}

// maxTemplateOutput bounds one rendered item: a Secret cannot hold more
// than 1 MiB anyway.
const maxTemplateOutput = 1 << 20

var (
	errTemplateOutput = errors.New("rendered value is larger than 1 MiB")
	errTemplateAction = errors.New("range, template, block and define are not allowed")
)

// checkTemplate refuses the actions that make execution time unbounded
// (range over a huge count, recursive templates): anyone who may create a
// SealedSecret writes these templates, and the controller runs them. With
// them gone, execution is linear in the template's size.
func checkTemplate(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errTemplateAction
	}
	if t.Tree == nil {
		return nil
	}
	var walk func(n parse.Node) error
	walk = func(n parse.Node) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.IfNode:
			if err := walk(n.List); err != nil {
				return err
			}
			return walk(n.ElseList)
		case *parse.WithNode:
			if err := walk(n.List); err != nil {
				return err
			}
			return walk(n.ElseList)
		case *parse.RangeNode, *parse.TemplateNode, *parse.BreakNode, *parse.ContinueNode:
			return errTemplateAction
		}
		return nil
	}
	return walk(t.Tree.Root)
}

type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.buf.Len()+len(p) > l.max {
		l.over = true
		return 0, errTemplateOutput
	}
	return l.buf.Write(p)
}

// execError keeps text/template's location and reason. The functions'
// own errors are fixed strings, and the built-in functions report types
// and indexes, never the strings they were given.
func execError(err error) error {
	var ee template.ExecError
	if errors.As(err, &ee) {
		return ee.Err
	}
	return errors.New("execution failed")
}

// TemplateFuncs returns the functions available in spec.template.data: a
// subset of the sprig library the Bitnami controller offers, with sprig's
// names, argument order and results. Functions that are not deterministic
// (random values, bcrypt, dates) are left out on purpose: a template must
// render the same Secret every time, or every resync would rewrite it.
func TemplateFuncs() template.FuncMap { return templateFuncs(&budget{left: maxTemplateAlloc}) }

// maxTemplateAlloc bounds what the functions of one item's rendering may
// allocate in total, so that chained or repeated calls cannot exhaust the
// controller's memory.
const maxTemplateAlloc = 16 << 20

var errTemplateBudget = errors.New("template functions exceeded their memory budget")

type budget struct{ left int }

// take charges n bytes (n < 0 is an overflow) against the budget.
func (b *budget) take(n int) error {
	if n < 0 || n > b.left {
		b.left = 0
		return errTemplateBudget
	}
	b.left -= n
	return nil
}

// str charges len(s) and returns s.
func (b *budget) str(s string, n int) (string, error) {
	if err := b.take(n); err != nil {
		return "", err
	}
	return s, nil
}

func templateFuncs(b *budget) template.FuncMap {
	// Each function charges the budget before allocating its result.
	sameSize := func(f func(string) string) func(string) (string, error) {
		return func(s string) (string, error) {
			if err := b.take(len(s)); err != nil {
				return "", err
			}
			return f(s), nil
		}
	}
	return template.FuncMap{
		// strings
		"upper":      sameSize(strings.ToUpper),
		"lower":      sameSize(strings.ToLower),
		"title":      sameSize(title),
		"nospace":    sameSize(nospace),
		"trim":       strings.TrimSpace,
		"trimAll":    func(cut, s string) string { return strings.Trim(s, cut) },
		"trimPrefix": func(p, s string) string { return strings.TrimPrefix(s, p) },
		"trimSuffix": func(p, s string) string { return strings.TrimSuffix(s, p) },
		"trunc":      trunc,
		"substr":     substr,
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix":  func(p, s string) bool { return strings.HasPrefix(s, p) },
		"hasSuffix":  func(p, s string) bool { return strings.HasSuffix(s, p) },
		"replace": func(old, new, s string) (string, error) {
			n := len(s)
			if old != "" {
				n += strings.Count(s, old) * (len(new) - len(old))
			} else {
				n += (len(s) + 1) * len(new)
			}
			if err := b.take(n); err != nil {
				return "", err
			}
			return strings.ReplaceAll(s, old, new), nil
		},
		"repeat": func(n int, s string) (string, error) {
			if n < 0 || (len(s) > 0 && n > maxTemplateAlloc/len(s)) {
				return "", errTemplateBudget
			}
			if err := b.take(n * len(s)); err != nil {
				return "", err
			}
			return strings.Repeat(s, n), nil
		},
		"indent": func(n int, s string) (string, error) {
			n = min(max(n, 0), 1024)
			if err := b.take(len(s) + (strings.Count(s, "\n")+1)*n); err != nil {
				return "", err
			}
			return indent(n, s), nil
		},
		"nindent": func(n int, s string) (string, error) {
			n = min(max(n, 0), 1024)
			if err := b.take(1 + len(s) + (strings.Count(s, "\n")+1)*n); err != nil {
				return "", err
			}
			return "\n" + indent(n, s), nil
		},
		"quote":  func(v ...any) (string, error) { s := quote(v...); return b.str(s, len(s)) },
		"squote": func(v ...any) (string, error) { s := squote(v...); return b.str(s, len(s)) },
		"cat":    func(v ...any) (string, error) { s := cat(v...); return b.str(s, len(s)) },
		"join":   func(sep string, v any) (string, error) { s := join(sep, v); return b.str(s, len(s)) },
		"splitList": func(sep, s string) ([]string, error) {
			if err := b.take(16 * (len(s) + 1)); err != nil {
				return nil, err
			}
			return strings.Split(s, sep), nil
		},
		"toString": func(v any) (string, error) { s := toString(v); return b.str(s, len(s)) },
		"atoi":     func(s string) int { n, _ := strconv.Atoi(s); return n },
		// encodings and digests
		"b64enc": func(s string) (string, error) {
			return b.str(base64.StdEncoding.EncodeToString([]byte(s)), 2*len(s))
		},
		"b64dec": func(s string) (string, error) {
			if err := b.take(2 * len(s)); err != nil {
				return "", err
			}
			return b64dec(s)
		},
		"b32enc": func(s string) (string, error) {
			return b.str(base32.StdEncoding.EncodeToString([]byte(s)), 3*len(s))
		},
		"b32dec": func(s string) (string, error) {
			if err := b.take(2 * len(s)); err != nil {
				return "", err
			}
			return b32dec(s)
		},
		"sha1sum":      func(s string) string { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) },
		"sha256sum":    func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"toJson":       func(v any) (string, error) { s := toJSON(v); return b.str(s, len(s)) },
		"toPrettyJson": func(v any) (string, error) { s := toPrettyJSON(v); return b.str(s, len(s)) },
		"fromJson": func(s string) (map[string]any, error) {
			if err := b.take(4 * len(s)); err != nil {
				return nil, err
			}
			return fromJSON(s)
		},
		// defaults and logic
		"default":  dfault,
		"empty":    empty,
		"coalesce": coalesce,
		"ternary": func(a, c any, cond bool) any {
			if cond {
				return a
			}
			return c
		},
		// lists and dicts
		"list": func(v ...any) ([]any, error) {
			if err := b.take(16 * len(v)); err != nil {
				return nil, err
			}
			return v, nil
		},
		"dict": func(v ...any) (map[string]any, error) {
			if err := b.take(64 * len(v)); err != nil {
				return nil, err
			}
			return dict(v...)
		},
		"get": func(d map[string]any, k string) any {
			if v, ok := d[k]; ok {
				return v
			}
			return ""
		},
		"hasKey": func(d map[string]any, k string) bool { _, ok := d[k]; return ok },
		"keys":   dictKeys,
	}
}

func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) || prev == '-' || prev == '_' {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

func nospace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func trunc(n int, s string) string {
	switch {
	case n < 0 && len(s)+n > 0:
		return s[len(s)+n:]
	case n >= 0 && len(s) > n:
		return s[:n]
	}
	return s
}

func substr(start, end int, s string) string {
	if start < 0 {
		return s[:min(max(end, 0), len(s))]
	}
	if end < 0 || end > len(s) {
		end = len(s)
	}
	if start > end {
		return ""
	}
	return s[start:end]
}

func quote(v ...any) string {
	out := make([]string, 0, len(v))
	for _, s := range v {
		if s != nil {
			out = append(out, strconv.Quote(toString(s)))
		}
	}
	return strings.Join(out, " ")
}

func squote(v ...any) string {
	out := make([]string, 0, len(v))
	for _, s := range v {
		if s != nil {
			out = append(out, "'"+toString(s)+"'")
		}
	}
	return strings.Join(out, " ")
}

func cat(v ...any) string {
	out := make([]string, 0, len(v))
	for _, s := range v {
		if s != nil {
			out = append(out, toString(s))
		}
	}
	return strings.Join(out, " ")
}

func join(sep string, v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return toString(v)
	}
	out := make([]string, 0, rv.Len())
	for i := range rv.Len() {
		if e := rv.Index(i).Interface(); e != nil {
			out = append(out, toString(e))
		}
	}
	return strings.Join(out, sep)
}

func toString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	case fmt.Stringer:
		return s.String()
	case error:
		return s.Error()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

var errDecode = errors.New("invalid encoded input")

func b64dec(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", errDecode
	}
	return string(b), nil
}

func b32dec(s string) (string, error) {
	b, err := base32.StdEncoding.DecodeString(s)
	if err != nil {
		return "", errDecode
	}
	return string(b), nil
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func toPrettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) (map[string]any, error) {
	m := map[string]any{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, errors.New("invalid JSON object")
	}
	return m, nil
}

// empty is sprig's notion of an empty value.
func empty(v any) bool {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return true
	}
	switch rv.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return rv.IsNil()
	case reflect.Struct:
		return false
	}
	return false
}

// dfault is sprig's default: the given value unless it is empty.
func dfault(d any, given ...any) any {
	if len(given) == 0 || empty(given[0]) {
		return d
	}
	return given[0]
}

func coalesce(v ...any) any {
	for _, x := range v {
		if !empty(x) {
			return x
		}
	}
	return nil
}

func dict(v ...any) (map[string]any, error) {
	if len(v)%2 != 0 {
		return nil, errors.New("dict needs an even number of arguments")
	}
	d := make(map[string]any, len(v)/2)
	for i := 0; i < len(v); i += 2 {
		d[toString(v[i])] = v[i+1]
	}
	return d, nil
}

func dictKeys(ds ...map[string]any) []string {
	var out []string
	for _, d := range ds {
		out = append(out, slices.Collect(maps.Keys(d))...)
	}
	slices.Sort(out)
	return out
}
