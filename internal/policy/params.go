package policy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// checkParams applies the parameter constraints of r to a request's data,
// as Vault does: required parameters must be present; then, if there is any
// data, denied_parameters are checked before allowed_parameters. It returns
// a reason, or "" when the data passes. When several parameters fail, the
// reason names the smallest key, so that it does not depend on map order.
func (r *rule) checkParams(params map[string]any) string {
	for _, name := range r.required {
		if _, ok := params[name]; !ok {
			return "missing required parameter " + strconv.Quote(name)
		}
	}
	if len(params) == 0 {
		return ""
	}

	if len(r.denied) > 0 {
		if _, ok := r.denied["*"]; ok {
			return reasonDenyAll
		}
		bad, found := "", false
		for k, v := range params {
			list, ok := r.denied[strings.ToLower(k)]
			if ok && deniedValue(v, list) && (!found || k < bad) {
				bad, found = k, true
			}
		}
		if found {
			return fmt.Sprintf("parameter %q is denied", bad)
		}
	}

	if len(r.allowed) == 0 || (r.allowAll && len(r.allowed) == 1) {
		return ""
	}
	bad, badValue, found := "", false, false
	for k, v := range params {
		list, ok := r.allowed[strings.ToLower(k)]
		var fails, valueFails bool
		switch {
		case !ok:
			fails = !r.allowAll
		case !allowedValue(v, list):
			fails, valueFails = true, true
		}
		if fails && (!found || k < bad) {
			bad, badValue, found = k, valueFails, true
		}
	}
	switch {
	case !found:
		return ""
	case badValue:
		return fmt.Sprintf("value of parameter %q is not allowed", bad)
	default:
		return fmt.Sprintf("parameter %q is not allowed", bad)
	}
}

// allowedValue reports whether v passes an allowed_parameters value list.
// As in Vault (1.16+): an empty list allows anything; otherwise v itself may
// match an entry, or every element of a list value, or every element of a
// comma-separated string, must. (Vault reads many parameters as
// comma-separated lists, so "a,b" must not smuggle in "b".) By the same
// rule an empty string, being an empty list, passes.
func allowedValue(v any, list []any) bool {
	if len(list) == 0 || inList(v, list) {
		return true
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if !inList(e, list) {
				return false
			}
		}
		return true
	case []string:
		for _, e := range v {
			if !stringInList(e, list) {
				return false
			}
		}
		return true
	case string:
		if v == "" {
			return true
		}
		for {
			part, rest, more := strings.Cut(v, ",")
			if !stringInList(strings.TrimSpace(part), list) {
				return false
			}
			if !more {
				return true
			}
			v = rest
		}
	}
	return false
}

// deniedValue reports whether v is caught by a denied_parameters value
// list: an empty list denies any value; otherwise v itself, any element of
// a list value, or any element of a comma-separated string, matching an
// entry denies it.
func deniedValue(v any, list []any) bool {
	if len(list) == 0 || inList(v, list) {
		return true
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if inList(e, list) {
				return true
			}
		}
	case []string:
		for _, e := range v {
			if stringInList(e, list) {
				return true
			}
		}
	case string:
		if v == "" {
			return false
		}
		for {
			part, rest, more := strings.Cut(v, ",")
			if stringInList(strings.TrimSpace(part), list) {
				return true
			}
			if !more {
				return false
			}
			v = rest
		}
	}
	return false
}

// inList reports whether the request value v matches an entry of list.
// String entries may glob (see globMatch) and match only strings. Other
// entries compare by value; unlike Vault, which compares with
// reflect.DeepEqual and so never matches a policy's 1 with a JSON body's
// 1, numbers compare numerically whatever their Go type.
func inList(v any, list []any) bool {
	if s, ok := v.(string); ok {
		return stringInList(s, list)
	}
	for _, el := range list {
		if el == nil || v == nil {
			if el == nil && v == nil {
				return true
			}
			continue
		}
		if _, ok := el.(string); ok {
			continue
		}
		if equalValues(el, v) {
			return true
		}
	}
	return false
}

func stringInList(s string, list []any) bool {
	for _, el := range list {
		if es, ok := el.(string); ok && globMatch(es, s) {
			return true
		}
	}
	return false
}

// globMatch matches val against a parameter value that may start and/or end
// with "*", as Vault's GlobbedStringsMatch does. A lone "*" is a literal.
func globMatch(pattern, val string) bool {
	if len(pattern) < 2 {
		return val == pattern
	}
	pre, suf := pattern[0] == '*', pattern[len(pattern)-1] == '*'
	switch {
	case pre && suf:
		return strings.Contains(val, pattern[1:len(pattern)-1])
	case pre:
		return strings.HasSuffix(val, pattern[1:])
	case suf:
		return strings.HasPrefix(val, pattern[:len(pattern)-1])
	}
	return val == pattern
}

// equalValues compares a policy value (as goValue builds it) with a request
// value, deeply, with numbers compared numerically and strings exactly.
func equalValues(pv, v any) bool {
	switch pv := pv.(type) {
	case nil:
		return v == nil
	case string:
		s, ok := v.(string)
		return ok && s == pv
	case bool:
		b, ok := v.(bool)
		return ok && b == pv
	case float64:
		f, ok := number(v)
		return ok && f == pv
	case []any:
		switch v := v.(type) {
		case []any:
			if len(v) != len(pv) {
				return false
			}
			for i := range v {
				if !equalValues(pv[i], v[i]) {
					return false
				}
			}
			return true
		case []string:
			if len(v) != len(pv) {
				return false
			}
			for i := range v {
				if s, ok := pv[i].(string); !ok || s != v[i] {
					return false
				}
			}
			return true
		}
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok || len(m) != len(pv) {
			return false
		}
		for k, pe := range pv {
			e, ok := m[k]
			if !ok || !equalValues(pe, e) {
				return false
			}
		}
		return true
	}
	return false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int8:
		return float64(n), true
	case int16:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint8:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		return f, err == nil
	}
	return 0, false
}
