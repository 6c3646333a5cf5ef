package secretsync

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxSecretBytes is the most data a target Secret may hold (the API
// server's own limit is 1 MiB for the whole object).
const maxSecretBytes = 1 << 20

// templateFuncs are the functions templates may call besides the
// built-ins: pure string helpers, nothing that reaches outside the data
// (see also checkTemplate).
var templateFuncs = template.FuncMap{
	"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"b64dec": func(s string) (string, error) {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("b64dec: input is not standard base64")
		}
		return string(b), nil
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"trim":  strings.TrimSpace,
	"quote": strconv.Quote,
	// Overrides the built-in printf.
	"printf": safePrintf,
}

// stringify renders a fetched value as Secret bytes: strings as they are,
// numbers and booleans in their JSON form, objects and lists as JSON.
func stringify(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return []byte{}, nil
	case string:
		return []byte(x), nil
	case json.Number:
		return []byte(x.String()), nil
	case bool:
		return []byte(strconv.FormatBool(x)), nil
	default:
		return json.Marshal(x)
	}
}

// lookupProperty finds prop in data: an exact key first, then a dotted
// path through nested objects.
func lookupProperty(data map[string]any, prop string) (any, bool) {
	if v, ok := data[prop]; ok {
		return v, true
	}
	var cur any = data
	for _, part := range strings.Split(prop, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// render turns fetched data into the target Secret's data: the selected
// keys (or all of them), then the templates. Errors never quote values.
func render(p *plan, fetched map[string]any) (map[string][]byte, error) {
	out := map[string][]byte{}
	if p.kv != nil && len(p.kv.Keys) > 0 {
		for _, ks := range p.kv.Keys {
			v, ok := lookupProperty(fetched, ks.Property)
			if !ok {
				return nil, fmt.Errorf("property %q not found in the source secret", ks.Property)
			}
			b, err := stringify(v)
			if err != nil {
				return nil, fmt.Errorf("property %q: %v", ks.Property, err)
			}
			out[ks.SecretKey] = b
		}
	} else {
		for k, v := range fetched {
			if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
				return nil, fmt.Errorf("source key %q is not a valid Secret key; select keys with source.kv.keys", k)
			}
			b, err := stringify(v)
			if err != nil {
				return nil, fmt.Errorf("source key %q: %v", k, err)
			}
			out[k] = b
		}
	}
	if p.templates != nil {
		vals := make(map[string]string, len(out))
		for k, v := range out {
			vals[k] = string(v)
		}
		rendered := make(map[string][]byte, len(p.templates))
		keys := make([]string, 0, len(p.templates))
		for k := range p.templates {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var buf bytes.Buffer
			if err := p.templates[k].Execute(&limitedWriter{w: &buf, n: maxSecretBytes}, vals); err != nil {
				return nil, fmt.Errorf("target.template.data[%q]: %s", k, redact(err.Error(), vals))
			}
			rendered[k] = buf.Bytes()
		}
		if p.mergeKeys {
			for k, v := range rendered {
				out[k] = v
			}
		} else {
			out = rendered
		}
	}
	total := 0
	for k, v := range out {
		total += len(k) + len(v)
	}
	if total > maxSecretBytes {
		return nil, fmt.Errorf("the rendered data is larger than 1 MiB")
	}
	return out, nil
}

// redact removes any fetched value from msg; text/template errors can
// quote the data they failed on.
func redact(msg string, vals map[string]string) string {
	for _, v := range vals {
		if len(v) >= 3 {
			msg = strings.ReplaceAll(msg, v, "[REDACTED]")
		}
	}
	return msg
}

// limitedWriter fails once more than n bytes are written, so a template
// cannot build an unbounded output.
type limitedWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("template output larger than 1 MiB")
	}
	l.n -= len(p)
	return l.w.Write(p)
}
